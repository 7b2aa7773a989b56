"""A small client generated from /openapi.json alone, the way a third party would build one.

``models_from_spec`` turns every component schema into a pydantic model (the JSON Schema
subset FastAPI emits: objects, arrays, scalars, ``$ref``, ``anyOf``, ``enum``,
``additionalProperties``); ``SpecClient`` finds an operation by its operation id, calls it,
and parses the answer with the model the spec documents for the status it got. An answer
that does not fit its documented schema raises. Nothing here imports hotline.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, TypeAdapter, create_model

_SCALARS: dict[str, Any] = {
    "string": str,
    "integer": int,
    "number": float,
    "boolean": bool,
    "null": type(None),
}


class _Models:
    def __init__(self, schemas: dict[str, Any]) -> None:
        self.schemas = schemas
        self.built: dict[str, type[BaseModel]] = {}

    def model(self, name: str) -> type[BaseModel]:
        if name not in self.built:
            schema = self.schemas[name]
            extra = "forbid" if schema.get("additionalProperties") is False else "allow"
            required = set(schema.get("required", []))
            fields: dict[str, Any] = {}
            for prop, sub in schema.get("properties", {}).items():
                tp = self.type_of(sub)
                fields[prop] = (tp, ...) if prop in required else (tp | None, None)
            self.built[name] = create_model(  # type: ignore[call-overload]
                name, __config__=ConfigDict(extra=extra), **fields
            )
        return self.built[name]

    def type_of(self, schema: dict[str, Any]) -> Any:
        if "$ref" in schema:
            return self.model(schema["$ref"].rsplit("/", 1)[-1])
        if "anyOf" in schema:
            options = tuple(self.type_of(s) for s in schema["anyOf"])
            out = options[0]
            for o in options[1:]:
                out = out | o
            return out
        if "enum" in schema:
            return Literal[tuple(schema["enum"])]
        kind = schema.get("type")
        if kind == "array":
            return list[self.type_of(schema.get("items", {}))]  # type: ignore[misc]
        if kind == "object":
            extra = schema.get("additionalProperties")
            if isinstance(extra, dict) and extra:
                return dict[str, self.type_of(extra)]  # type: ignore[misc]
            return dict[str, Any]
        if kind in _SCALARS:
            return _SCALARS[kind]
        return Any


def models_from_spec(spec: dict[str, Any]) -> dict[str, type[BaseModel]]:
    m = _Models(spec.get("components", {}).get("schemas", {}))
    return {name: m.model(name) for name in m.schemas}


@dataclass
class Answer:
    status: int
    value: Any  # parsed with the model the spec documents for this status


class SpecClient:
    def __init__(self, spec: dict[str, Any], http: httpx.AsyncClient) -> None:
        self.spec, self.http = spec, http
        self._models = _Models(spec.get("components", {}).get("schemas", {}))
        self.operations: dict[str, tuple[str, str, dict[str, Any]]] = {}
        for path, item in spec["paths"].items():
            for method, op in item.items():
                self.operations[op["operationId"]] = (method.upper(), path, op)

    async def call(
        self,
        operation_id: str,
        *,
        path: dict[str, str] | None = None,
        json: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        method, template, op = self.operations[operation_id]
        url = template.format(**(path or {}))
        r = await self.http.request(method, url, json=json, params=params, headers=headers)
        documented = op["responses"].get(str(r.status_code))
        if documented is None:
            raise AssertionError(f"{operation_id} answered {r.status_code}, not in the spec")
        content = documented.get("content", {}).get("application/json")
        if content is None:
            return Answer(r.status_code, r.content)
        tp = self._models.type_of(content["schema"])
        return Answer(r.status_code, TypeAdapter(tp).validate_python(r.json()))
