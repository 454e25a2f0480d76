"""Schemathesis checks for the GraphQL contract: no 5xx, and every error carries one of the
contract's codes in `extensions.code` (run with SCHEMATHESIS_HOOKS=hooks, see README)."""

import hashlib

import graphql
import schemathesis

CODES = {
    "GRAPHQL_PARSE_FAILED", "GRAPHQL_VALIDATION_FAILED", "UNAUTHENTICATED", "FORBIDDEN",
    "BAD_USER_INPUT", "INVALID_EMAIL", "PASSWORD_TOO_SHORT", "PASSWORD_TOO_LONG",
    "PASSWORD_COMPROMISED", "INVALID_EMAIL_OR_PASSWORD", "USER_ALREADY_EXISTS",
    "INVALID_PASSWORD", "EMAIL_NOT_VERIFIED", "USER_BANNED", "INVALID_TOKEN", "TOKEN_EXPIRED",
    "NOT_FOUND", "RATE_LIMITED", "PAYLOAD_TOO_LARGE", "UNSUPPORTED_MEDIA_TYPE",
    "METHOD_NOT_ALLOWED", "SERVICE_UNAVAILABLE", "INTERNAL_SERVER_ERROR",
    # Social sign-in (CONTRACT.md, "Social sign-in").
    "PROVIDER_NOT_FOUND", "INVALID_ID_TOKEN", "FAILED_TO_UNLINK_LAST_ACCOUNT",
    # Two-factor and passwordless sign-in (CONTRACT.md, "Two-factor authentication").
    "INVALID_CODE", "TWO_FACTOR_NOT_ENABLED",
}


@schemathesis.check
def contract_error_codes(ctx, response, case):
    assert response.status_code < 500, f"server error {response.status_code}"
    body = response.json()
    bodies = body if isinstance(body, list) else [body]
    for item in bodies:
        for error in item.get("errors") or []:
            code = (error.get("extensions") or {}).get("code")
            assert code in CODES, f"error without a contract code: {error}"
            assert code != "INTERNAL_SERVER_ERROR", f"internal error: {error}"


class _WithNul(graphql.Visitor):
    """Puts a NUL character into every string literal (IDs, searches, cursors, inputs)."""

    def enter_string_value(self, node, *_):
        middle = len(node.value) // 2
        return graphql.StringValueNode(value=node.value[:middle] + "\x00" + node.value[middle:])


@schemathesis.hook
def map_body(context, body):
    """One generated document in three gets NUL characters in its string literals (chosen by a
    hash of the document, so runs stay reproducible): the answer must be a contract refusal
    (BAD_USER_INPUT), never INTERNAL_SERVER_ERROR, on either database (issue 13, item 8)."""
    if not isinstance(body, graphql.DocumentNode):
        return body
    digest = hashlib.sha256(graphql.print_ast(body).encode()).digest()
    if digest[0] % 3 != 0:
        return body
    return graphql.visit(body, _WithNul())


# The `JSON` scalar (WebAuthn responses for registerPasskey / signInPasskey): any JSON object
# literal, as a GraphQL value node.
from hypothesis import strategies as _st
from hypothesis_graphql import nodes as _nodes

schemathesis.graphql.scalar(
    "JSON",
    _st.dictionaries(
        _st.sampled_from(["id", "rawId", "type", "response"]),
        _st.text(max_size=20).map(_nodes.String),
        max_size=4,
    ).map(lambda d: graphql.ObjectValueNode(
        fields=tuple(
            graphql.ObjectFieldNode(name=graphql.NameNode(value=k), value=v) for k, v in d.items()
        )
    )),
)
