"""A strict validator for Swagger 2.0 definitions, as Kubernetes' API server applies them with field
validation set to Strict: a property the schema does not name is an error (a typo must fail), as are a
missing required property, a wrong type and a value outside an enum."""

from __future__ import annotations

from typing import Any

TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,), "array": (list,), "string": (str,), "boolean": (bool,),
    "integer": (int,), "number": (int, float),
}


def _type_ok(value: Any, kind: str) -> bool:
    if kind in ("integer", "number") and isinstance(value, bool):
        return False
    return isinstance(value, TYPES[kind])


def validate(value: Any, schema: dict[str, Any], definitions: dict[str, Any], where: str = "") -> list[str]:
    """Every error, each naming the field's path."""
    if "$ref" in schema:
        return validate(value, definitions[schema["$ref"].rsplit("/", 1)[-1]], definitions, where)
    errors: list[str] = []
    kinds = schema.get("type")
    if kinds is not None:
        allowed = kinds if isinstance(kinds, list) else [kinds]
        if not any(_type_ok(value, kind) for kind in allowed):
            return [f"{where or '.'}: {type(value).__name__} where the schema wants {'/'.join(allowed)}"]
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{where}: {value!r} is not one of {schema['enum']}")
    if isinstance(value, dict):
        properties = schema.get("properties")
        extra = schema.get("additionalProperties")
        for name in schema.get("required", []):
            if name not in value:
                errors.append(f"{where}.{name}: required")
        for name, item in value.items():
            if properties is not None and name in properties:
                errors += validate(item, properties[name], definitions, f"{where}.{name}")
            elif isinstance(extra, dict):
                errors += validate(item, extra, definitions, f"{where}.{name}")
            elif properties is not None or extra is False:
                errors.append(f"{where}.{name}: unknown field")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            errors += validate(item, schema["items"], definitions, f"{where}[{i}]")
    return errors
