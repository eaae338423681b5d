"""An LLM judge of reply quality (optional): relevance, coherence and conciseness of the
agent's replies in one conversation, 1 to 5, each with a one-line reason.

It runs on any `TextChat` (`shopbot.eval.simulator.openai_chat` for an OpenAI-compatible
endpoint). It grades manner only: task success is decided by the shop's state, never by it.
An answer that does not parse counts as no judgement (None), not as a low mark.
"""

from __future__ import annotations

import json
import logging
import re

from langchain_core.messages import HumanMessage, SystemMessage
from pydantic import ValidationError

from shopbot.eval.runner import Judge, JudgeScore
from shopbot.eval.simulator import TextChat

log = logging.getLogger(__name__)

PROMPT = """You grade the replies of an online shop's customer-service assistant.
Read the conversation and mark the ASSISTANT's replies from 1 (poor) to 5 (excellent):
- relevance: do the replies address what the customer asked?
- coherence: are they consistent, clear and logically ordered?
- conciseness: are they as short as they can be while complete?
Answer with one JSON object only:
{"relevance": n, "relevance_reason": "one line", "coherence": n, "coherence_reason": "one line",
 "conciseness": n, "conciseness_reason": "one line"}"""


def make_judge(chat: TextChat) -> Judge:
    async def judge(transcript: list[tuple[str, str]]) -> JudgeScore | None:
        conversation = "\n".join(
            f"{'CUSTOMER' if who == 'customer' else 'ASSISTANT'}: {text}"
            for who, text in transcript
        )
        answer = await chat([SystemMessage(PROMPT), HumanMessage(conversation)])
        return parse_judgement(answer)

    return judge


def parse_judgement(answer: str) -> JudgeScore | None:
    found = re.search(r"\{.*\}", answer, re.DOTALL)
    if found is None:
        log.warning("the judge answered without JSON: %.200s", answer)
        return None
    try:
        return JudgeScore.model_validate(json.loads(found.group(0)))
    except (json.JSONDecodeError, ValidationError) as exc:
        log.warning("the judge's answer does not validate: %s", exc)
        return None


__all__ = ["PROMPT", "make_judge", "parse_judgement"]
