"""Chat model backends behind one interface; the loop never imports a concrete backend."""

from shopbot.models.base import ChatModel, ModelRequest, Usage

__all__ = ["ChatModel", "ModelRequest", "Usage"]
