"""Greedy decoding under a grammar, checking the greedy token before the whole vocabulary.

llama.cpp's grammar sampler tests every one of the vocabulary's 49k tokens against the
grammar at every step (about 8 ms a token here, half again the decoding itself). Under greedy
decoding only one token can win: if the model's favourite is one the grammar accepts, it is
the answer; only when it is not are the others masked. The output is the same token by token
(`tests/models/test_sampling.py`), and a model that writes what the grammar wants, as the
trained student does, almost never pays for the full mask.

llama.cpp's own `common_sampler` does the same; llama-cpp-python's high-level API does not,
so this plugs into it as a custom sampler in the chain it builds for `generate`.
"""

from __future__ import annotations

import contextlib
import ctypes
import math
from typing import Any

import numpy as np

TOKEN_DATA = np.dtype([("id", "<i4"), ("logit", "<f4"), ("p", "<f4")])


class GreedyFirstGrammar:
    """A llama.cpp sampler: applies `grammar` to the greedy candidate first, to all only if
    it is rejected. Put it before a greedy sampler in a chain."""

    def __init__(self, model: Any, grammar: Any) -> None:
        import llama_cpp

        self._lib: Any = llama_cpp
        self.grammar: Any = llama_cpp.llama_sampler_init_grammar(
            model.vocab, grammar._grammar.encode("utf-8"), grammar._root.encode("utf-8")
        )
        self.checked = 0
        """Tokens decided by checking the greedy candidate alone."""
        self.masked = 0
        """Tokens for which the whole vocabulary had to be masked."""
        self._one = (llama_cpp.llama_token_data * 1)()
        self._one_array = llama_cpp.llama_token_data_array(
            data=self._one, size=1, selected=-1, sorted=False
        )
        self._apply_ref = llama_cpp.llama_sampler_i_apply(self._apply)
        self._accept_ref = llama_cpp.llama_sampler_i_accept(self._accept)
        self._reset_ref = llama_cpp.llama_sampler_i_reset(self._reset)
        iface = llama_cpp.llama_sampler_i()
        iface.name = llama_cpp.llama_sampler_i_name(0)
        iface.accept = self._accept_ref
        iface.apply = self._apply_ref
        iface.reset = self._reset_ref
        iface.clone = llama_cpp.llama_sampler_i_clone(0)
        iface.free = llama_cpp.llama_sampler_i_free(0)
        self._iface = iface
        self.sampler = llama_cpp.llama_sampler()
        self.sampler.iface = ctypes.pointer(iface)
        self.sampler.ctx = None

    def _apply(self, _smpl: Any, cur_p: Any) -> None:
        try:
            self._apply_greedy_first(cur_p)
        except Exception:  # ctypes would swallow it and leave the token unconstrained
            self.masked += 1
            self._lib.llama_sampler_apply(self.grammar, cur_p)

    def _apply_greedy_first(self, cur_p: Any) -> None:
        candidates = cur_p.contents
        size = int(candidates.size)
        address = ctypes.addressof(candidates.data.contents)
        raw: Any = (ctypes.c_char * (size * TOKEN_DATA.itemsize)).from_address(address)
        data = np.frombuffer(memoryview(raw), TOKEN_DATA)
        best = int(np.argmax(data["logit"]))
        self._one[0].id = int(data["id"][best])
        self._one[0].logit = float(data["logit"][best])
        self._one[0].p = 0.0
        self._one_array.size = 1
        self._one_array.selected = -1
        self._lib.llama_sampler_apply(self.grammar, ctypes.byref(self._one_array))
        if math.isfinite(self._one[0].logit):
            self.checked += 1  # the greedy sampler after this one picks the same token
            return
        self.masked += 1
        self._lib.llama_sampler_apply(self.grammar, cur_p)

    def _accept(self, _smpl: Any, token: int) -> None:
        self._lib.llama_sampler_accept(self.grammar, token)

    def _reset(self, _smpl: Any) -> None:
        self._lib.llama_sampler_reset(self.grammar)

    def close(self) -> None:
        if self.grammar is not None:
            self._lib.llama_sampler_free(self.grammar)
            self.grammar = None


def greedy_chain(llm: Any, grammar: Any) -> Any:
    """A `LlamaSampler` for `llm.generate`: greedy-first grammar, then greedy."""
    import llama_cpp
    from llama_cpp._internals import LlamaSampler

    lib: Any = llama_cpp
    chain: Any = LlamaSampler()
    first = GreedyFirstGrammar(llm._model, grammar)
    # The grammar is freed after the chain has let go of our sampler: the chain's own clean-up
    # (entered last) runs first.
    stack = contextlib.ExitStack()
    stack.callback(first.close)
    stack.enter_context(chain._exit_stack)
    chain._exit_stack = stack
    index = lib.llama_sampler_chain_n(chain.sampler)
    lib.llama_sampler_chain_add(chain.sampler, ctypes.pointer(first.sampler))
    # Registered as a custom sampler so the chain removes it before freeing itself:
    # llama.cpp would otherwise delete memory that Python owns.
    chain.custom_samplers.append((index, first))
    chain.add_greedy()
    return chain


def use_greedy_first(llm: Any) -> None:
    """Make `llm` decode greedy grammar-constrained steps with `greedy_chain`."""
    original = llm._init_sampler

    def init_sampler(**kwargs: Any) -> Any:
        grammar = kwargs.get("grammar")
        temp = kwargs.get("temp", 0.8)
        simple = (
            grammar is not None
            and temp == 0.0
            and kwargs.get("logits_processor") is None
            and kwargs.get("repeat_penalty", 1.0) == 1.0
            and kwargs.get("frequency_penalty", 0.0) == 0.0
            and kwargs.get("presence_penalty", 0.0) == 0.0
        )
        return greedy_chain(llm, grammar) if simple else original(**kwargs)

    llm._init_sampler = init_sampler


__all__ = ["GreedyFirstGrammar", "greedy_chain", "use_greedy_first"]
