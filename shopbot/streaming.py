"""A reply's text while the model is still writing it.

A step written as JSON (`{"thought": ..., "action": {"tool": "reply", "args": {"message":
...}}}`) arrives in pieces. `ReplyDraft` reads the pieces once each, keeping only the path of
keys it is in, and hands out the decoded text of `action.args.message` as it grows, once
`action.tool` is known to be `reply` (`ReplyDraft.of_call`: of `message` in the arguments of a
call whose tool is known, as an API streams them). langchain's `parse_partial_json` would
re-parse the whole text for every piece, quadratic in the length of a reply. Backends use it
to hand out their steps' `StepDelta`s (`shopbot.models.base`).

What a draft shows is a preview: the loop still parses and checks the whole step, and
interfaces drop the draft when that step fails to parse or is denied.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["ReplyDraft"]

_TOOL = ("action", "tool")
_MESSAGE = ("action", "args", "message")
_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


@dataclass
class _Frame:
    is_object: bool
    key: str | None = None
    expects_key: bool = False


@dataclass
class ReplyDraft:
    """Fed a step's raw pieces in order; `feed` returns the reply text each one revealed."""

    raw: str = ""
    """Everything fed so far."""
    shown: str = ""
    """The reply text handed out so far."""
    tool: str | None = None
    """The step's tool, once read (or known up front: `of_call`)."""
    message: tuple[str, ...] = _MESSAGE
    """The path of keys to the reply's text."""
    _stack: list[_Frame] = field(default_factory=list[_Frame])
    _string: list[str] | None = None
    _escape: str | None = None
    _surrogate: int | None = None
    _message: list[str] = field(default_factory=list[str])
    _target: bool = False

    @classmethod
    def of_call(cls, tool: str) -> ReplyDraft:
        """A draft fed the arguments of a call to `tool` (JSON text), not a whole step."""
        return cls(tool=tool, message=_MESSAGE[-1:])

    def feed(self, piece: str) -> str:
        self.raw += piece
        for char in piece:
            self._char(char)
        if self.tool != "reply":
            return ""
        new = "".join(self._message)[len(self.shown) :]
        self.shown += new
        return new

    def _path(self) -> tuple[str | None, ...]:
        return tuple(frame.key for frame in self._stack)

    def _char(self, char: str) -> None:
        if self._string is not None:
            self._in_string(char)
            return
        top = self._stack[-1] if self._stack else None
        if char == '"':
            self._string = []
            self._target = top is not None and not top.expects_key and self._path() == self.message
        elif char in "{[":
            self._stack.append(_Frame(is_object=char == "{", expects_key=char == "{"))
        elif char in "}]":
            if self._stack:
                self._stack.pop()
        elif char == "," and top is not None and top.is_object:
            top.key, top.expects_key = None, True

    def _in_string(self, char: str) -> None:
        assert self._string is not None
        if self._escape is not None:
            self._escape += char
            if self._escape[0] != "u":
                self._add(_ESCAPES.get(char, char))
                self._escape = None
            elif len(self._escape) == 5:
                self._add_code(int(self._escape[1:], 16))
                self._escape = None
        elif char == "\\":
            self._escape = ""
        elif char == '"':
            self._close_string()
        else:
            self._add(char)

    def _add_code(self, code: int) -> None:
        if 0xD800 <= code < 0xDC00:
            self._surrogate = code
            return
        if 0xDC00 <= code < 0xE000 and self._surrogate is not None:
            code = 0x10000 + ((self._surrogate - 0xD800) << 10) + (code - 0xDC00)
        self._surrogate = None
        self._add(chr(code) if not 0xD800 <= code < 0xE000 else "\ufffd")

    def _add(self, text: str) -> None:
        assert self._string is not None
        self._string.append(text)
        if self._target:
            self._message.append(text)

    def _close_string(self) -> None:
        assert self._string is not None
        value, self._string, self._target = "".join(self._string), None, False
        top = self._stack[-1] if self._stack else None
        if top is None or not top.is_object:
            return
        if top.expects_key:
            top.key, top.expects_key = value, False
        elif self._path() == _TOOL and self.message == _MESSAGE:
            self.tool = value
