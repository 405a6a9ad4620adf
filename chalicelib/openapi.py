"""The OpenAPI 3.1 description of the integrator API (GET /openapi.json),
built from the operations app.py serves: each names the pydantic models that
validate its request (service.commands) and shape its answer (service.answers),
and the statuses app.py answers with. Nothing here is kept by hand.

Models are named, not imported: their modules (and pydantic) load on a route's
first use, not on every function's cold start."""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from dataclasses import dataclass
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import BaseModel
    from pydantic.json_schema import JsonSchemaMode

ANSWERS = "chalicelib.service.answers"
COMMANDS = "chalicelib.service.commands"

API_VERSION = "1"
SECURITY_SCHEME = "apiKey"
# The path parameters, described once (with an example each: the local stack's demo shop).
PATH_PARAMETERS = {
    "shop_id": ("`taobao:<user_id>` or `jd:<venderId>`", "taobao:2200000001"),
    "order_id": ("the platform's order id", "3010001"),
    "case_id": (
        "the Taobao-style `refund_id`, or `refund-<id>` / `afs-<afsServiceId>` (JD-style)",
        "R3010001",
    ),
    "action_id": ("as the action's 202 named it", "act_0123456789abcdef01234567"),
    "subscription_id": ("as the subscription's 201 named it", "sub_0123456789abcdef01234567"),
}


@dataclass(frozen=True)
class Operation:
    """One route as it is served: its models and its statuses."""

    name: str  # the view's: the operationId
    path: str
    method: str
    summary: str
    status: int
    answer: str | None  # its model's name in service.answers; None: no content
    body: str | None = None  # its model's name in service.commands
    query: str | None = None  # the same
    keyed: bool = True
    refusals: tuple[int, ...] = ()  # each answered with ErrorAnswer

    @property
    def answer_model(self) -> type[BaseModel] | None:
        return model(ANSWERS, self.answer)

    @property
    def body_model(self) -> type[BaseModel] | None:
        return model(COMMANDS, self.body)

    @property
    def query_model(self) -> type[BaseModel] | None:
        return model(COMMANDS, self.query)


def model(module: str, name: str | None) -> type[BaseModel] | None:
    """The model `name` of `module`, importing the module on first use."""
    return None if name is None else getattr(importlib.import_module(module), name)


def _schemas(
    operations: list[Operation],
) -> tuple[dict[tuple[type[BaseModel], JsonSchemaMode], dict[str, Any]], dict[str, Any]]:
    """Every model's schema under components, and a reference to each (requests
    as validated, answers as serialized)."""
    from pydantic.json_schema import models_json_schema

    from chalicelib.service.answers import ErrorAnswer

    wanted: dict[tuple[type[BaseModel], JsonSchemaMode], None] = {
        (ErrorAnswer, "serialization"): None
    }
    for operation in operations:
        for declared, mode in (
            (operation.body_model, "validation"),
            (operation.query_model, "validation"),
            (operation.answer_model, "serialization"),
        ):
            if declared is not None:
                wanted[(declared, mode)] = None
    references, schema = models_json_schema(
        list(wanted), ref_template="#/components/schemas/{model}"
    )
    return dict(references), schema.get("$defs", {})


def _parameters(
    operation: Operation, components: dict[str, Any], reference: dict[str, Any] | None
) -> list[dict[str, Any]]:
    parameters = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "description": PATH_PARAMETERS[name][0],
            "schema": {"type": "string", "minLength": 1},
            "example": PATH_PARAMETERS[name][1],
        }
        for name in PATH_PARAMETERS
        if f"{{{name}}}" in operation.path
    ]
    if reference is not None:
        query = components[reference["$ref"].rsplit("/", 1)[1]]
        parameters += [
            {
                "name": name,
                "in": "query",
                "required": name in query.get("required", ()),
                "schema": schema,
            }
            for name, schema in query["properties"].items()
        ]
    return parameters


def _json_content(reference: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": reference}}


def _operation(
    operation: Operation,
    references: dict[tuple[type[BaseModel], JsonSchemaMode], dict[str, Any]],
    components: dict[str, Any],
) -> dict[str, Any]:
    from chalicelib.service.answers import ErrorAnswer

    answer: dict[str, Any] = {"description": HTTPStatus(operation.status).phrase}
    if operation.answer is not None:
        answer["content"] = _json_content(references[(operation.answer_model, "serialization")])
    responses = {str(operation.status): answer}
    for status in operation.refusals:
        responses[str(status)] = {
            "description": HTTPStatus(status).phrase,
            "content": _json_content(references[(ErrorAnswer, "serialization")]),
        }
    described: dict[str, Any] = {
        "operationId": operation.name,
        "summary": operation.summary,
        "parameters": _parameters(
            operation,
            components,
            references[(operation.query_model, "validation")] if operation.query else None,
        ),
        "responses": responses,
        "security": [{SECURITY_SCHEME: []}] if operation.keyed else [],
    }
    if operation.body is not None:
        described["requestBody"] = {
            "required": True,
            "content": _json_content(references[(operation.body_model, "validation")]),
        }
    return described


def document(operations: Iterable[Operation]) -> dict[str, Any]:
    served = list(operations)
    references, components = _schemas(served)
    paths: dict[str, dict[str, Any]] = {}
    for operation in served:
        paths.setdefault(operation.path, {})[operation.method.lower()] = _operation(
            operation, references, components
        )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "ShopHook integrator API",
            "version": API_VERSION,
            "description": "Reads, actions and subscriptions (platforms.md sections 4 and 5). "
            "Every refusal is {code, message, field?}.",
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                SECURITY_SCHEME: {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "an integrator key, shk_...",
                }
            },
        },
    }
