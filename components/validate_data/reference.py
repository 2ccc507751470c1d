"""What validate_data compares the data with: the champion's schema.json, read through the verified registry path."""

from __future__ import annotations

from dataclasses import dataclass

from components._common.registry import champion, check_model_name
from model_bundle import SCHEMA_FILE, BundleFormatError


@dataclass(frozen=True)
class Reference:
    schema: dict | None  # the champion's data contract; None: nothing to compare with
    name: str  # what the report and messages call it, e.g. "the schema.json of houses version 3 (the champion)"
    not_compared: str = ""  # why an existing champion was not compared, or ""


def champion_reference(tracking_uri: str, model_name: str) -> Reference:
    """The champion's schema.json, verified against its card and the registry's digests (a tampered file raises
    model_bundle.BundleError naming it). No model name, no champion, or one registered without a schema: nothing to
    compare with. A champion written by another release (another card format) is not compared either, with the
    reason: whether it still counts is gate_model's decision (its incompatible_champion policy), not this step's.
    ValueError naming the parameter for a ``model_name`` the registry cannot take (registry.check_model_name)."""
    if not model_name:
        return Reference(None, "")
    # Else a training run would stop only at register_model, after training: this is its first step given the name.
    check_model_name(model_name)
    try:
        verified = champion(tracking_uri, model_name)
    except BundleFormatError as error:
        return Reference(
            None,
            "",
            f"the champion of {model_name} has a model card of another format version, so this data is not "
            f"compared with its {SCHEMA_FILE}; gate_model will judge that champion incompatible "
            f"(gate_policy['incompatible_champion'] decides). {error}",
        )
    schema = verified.document(SCHEMA_FILE) if verified is not None else None
    return Reference(schema, f"the {SCHEMA_FILE} of {verified.description}" if schema is not None else "")
