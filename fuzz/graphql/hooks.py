"""Schemathesis checks for the GraphQL contract: no 5xx, and every error carries one of the
contract's codes in `extensions.code` (run with SCHEMATHESIS_HOOKS=hooks, see README)."""

import schemathesis

CODES = {
    "GRAPHQL_PARSE_FAILED", "GRAPHQL_VALIDATION_FAILED", "UNAUTHENTICATED", "FORBIDDEN",
    "BAD_USER_INPUT", "INVALID_EMAIL", "PASSWORD_TOO_SHORT", "PASSWORD_TOO_LONG",
    "PASSWORD_COMPROMISED", "INVALID_EMAIL_OR_PASSWORD", "USER_ALREADY_EXISTS",
    "INVALID_PASSWORD", "EMAIL_NOT_VERIFIED", "USER_BANNED", "INVALID_TOKEN", "TOKEN_EXPIRED",
    "NOT_FOUND", "RATE_LIMITED", "PAYLOAD_TOO_LARGE", "UNSUPPORTED_MEDIA_TYPE",
    "METHOD_NOT_ALLOWED", "SERVICE_UNAVAILABLE", "INTERNAL_SERVER_ERROR",
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
