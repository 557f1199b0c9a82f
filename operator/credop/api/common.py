"""Types shared by the three kinds: the model base, conditions, durations, references."""

from __future__ import annotations

import datetime
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from credop.api.durations import (
    DURATION_OR_NEVER_PATTERN,
    DURATION_PATTERN,
    NOTIFY_BEFORE_PATTERN,
)

# A credential's phases, spelled once: the kinds' phase Literals and the code use these.
PENDING: Final = "Pending"
ACTIVE: Final = "Active"
INACTIVE: Final = "Inactive"
EXPIRED: Final = "Expired"
DISABLED: Final = "Disabled"
FAILED: Final = "Failed"


class ApiModel(BaseModel):
    """Base of every spec and status model: camelCase on the wire, unknown fields refused."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        use_attribute_docstrings=True,
        frozen=True,
    )

    def to_wire(self) -> dict[str, Any]:
        """The JSON-ready dict the API server stores (camelCase, unset fields left out)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)

    def to_patch(self) -> dict[str, Any]:
        """A JSON merge patch of the fields given when the model was made: ``None`` ones are removed."""
        return self.model_dump(mode="json", by_alias=True, exclude_unset=True)


class StatusModel(ApiModel):
    """Base of status models: tolerant of fields written by other versions."""

    model_config = ConfigDict(extra="ignore")


Duration = Annotated[
    str,
    Field(pattern=DURATION_PATTERN, max_length=32, examples=["90s", "30d"]),
]
NotifyBefore = Annotated[
    str,
    Field(pattern=NOTIFY_BEFORE_PATTERN, max_length=32, examples=["14d", "None"]),
]
DurationOrNever = Annotated[
    str,
    Field(pattern=DURATION_OR_NEVER_PATTERN, max_length=32, examples=["30d", "Never"]),
]
Name = Annotated[
    str,
    Field(
        min_length=1,
        max_length=253,
        pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$",
        description="A Kubernetes object name.",
    ),
]
PolicyAction = Literal["Disable", "None"]
ConditionStatus = Literal["True", "False", "Unknown"]


class Condition(StatusModel):
    """A condition in the Kubernetes API conventions' shape (metav1.Condition)."""

    type: str
    """Condition type: Ready, ExpiringSoon, RotationDue, Unused, SecretMissing."""
    status: ConditionStatus
    """True, False or Unknown."""
    reason: str
    """A CamelCase word for the last transition."""
    message: str = ""
    """A sentence for humans."""
    last_transition_time: datetime.datetime
    """When the status last changed."""
    observed_generation: int | None = None
    """The .metadata.generation the condition was computed from."""


class SecretReference(ApiModel):
    """The name of a Secret in the credential's namespace."""

    name: Name
    """The Secret's name."""


class SecretKeyReference(ApiModel):
    """A key of a Secret in the credential's namespace."""

    name: Name
    """The Secret's name."""
    key: str = Field(default="clientSecret", min_length=1, max_length=253, pattern=r"^[-._a-zA-Z0-9]+$")
    """The key in the Secret's data that holds the value."""


class SecretTemplate(ApiModel):
    """Extra keys, labels and annotations for the generated Secret.

    Values may use ``{{ .accessKeyId }}``, ``{{ .secretKey }}``, ``{{ .clientId }}``,
    ``{{ .clientSecret }}``, ``{{ .tenant }}`` (the namespace) and ``{{ .endpoint }}``
    (the credential service URL), e.g. ``key:{{ .accessKeyId }}::{{ .secretKey }}``.
    Labels and annotations may not use the secret values.
    """

    data: dict[str, str] = Field(default_factory=dict)
    """Extra Secret keys rendered from the template variables."""
    labels: dict[str, str] = Field(default_factory=dict)
    """Extra labels for the Secret."""
    annotations: dict[str, str] = Field(default_factory=dict)
    """Extra annotations for the Secret."""
