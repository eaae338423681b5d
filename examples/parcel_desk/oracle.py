"""The parcel desk's oracle: a perfect agent for its scenarios, for `shopbot eval --model
oracle` (`Desk.oracle`). It proves the customer as the returns desk's oracle does (the same
identity check), then tracks the goal's order and says what the tool reported."""

from __future__ import annotations

from shopbot.eval.oracle import Oracle, Step, Transcript
from shopbot.models.base import ModelRequest

TRACK = "track_parcel"
OFF_TOPIC = "I'm the shop's parcel desk: I can tell you where your parcels are."


class ParcelOracle(Oracle):
    def decide(self, request: ModelRequest) -> Step:
        t = Transcript(self.events)
        if self.intent(t.customer_text) == "human":
            return "escalate", {"reason": "The customer asked to talk to a person."}
        if self.scenario.goal.kind != "status":
            return "reply", {"message": OFF_TOPIC}
        if TRACK not in request.allowed:  # not verified yet
            return self._identify(t, request)
        tracked = t.observed(TRACK, this_turn=True)
        if not tracked:
            return TRACK, {"order_id": str(self.scenario.goal.order_id)}
        return "reply", {"message": tracking_text(tracked[-1])}


def tracking_text(tracking: dict[str, object]) -> str:
    """What a tracking observation says, in the customer's words."""
    status = str(tracking["status"]).replace("_", " ")
    parcels = tracking["parcels"]
    assert isinstance(parcels, list)
    if not parcels:
        return f"Order {tracking['order_id']} is {status}: it has not shipped yet."
    lines = [f"Order {tracking['order_id']} is {status}."]
    for parcel in parcels:
        assert isinstance(parcel, dict)
        text = f"{parcel['carrier']} tracking number {', '.join(parcel['tracking'])}"
        if parcel.get("delivered_on"):
            text += f": delivered on {parcel['delivered_on']}"
        elif parcel.get("shipped_on"):
            text += f": shipped on {parcel['shipped_on']}, on its way"
        lines.append(text + ".")
    return " ".join(lines)


__all__ = ["ParcelOracle", "tracking_text"]
