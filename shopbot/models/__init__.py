"""Chat model backends behind one interface; the loop never imports a concrete backend."""

from shopbot.models.base import (
    ChatModel,
    ModelRequest,
    ModelStep,
    RawText,
    Situation,
    StepDelta,
    ToolCall,
    Usage,
)

__all__ = [
    "ChatModel",
    "ModelRequest",
    "ModelStep",
    "RawText",
    "Situation",
    "StepDelta",
    "ToolCall",
    "Usage",
]
