"""Who a REST call acts for, for /api and /v1 alike: an HTTP basic user, or an API token sent as a Bearer token (what
OpenAI clients do with their api_key). In single-user mode every call acts for the local user and needs neither.

Also the /api/tokens routes, where a logged-in user makes, lists and revokes their tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBasic, HTTPBasicCredentials, HTTPBearer
from pydantic import BaseModel, Field

from ui.context import AppContext
from worker.tokens import MAX_NAME_CHARS

REALM = "Finetune Playground"
MAKE_A_TOKEN = "make one with `playground tokens create --user NAME` or with POST /api/tokens and your password"
_basic = HTTPBasic(auto_error=False, realm=REALM)
_bearer = HTTPBearer(auto_error=False, description="An API token (fp-...) from POST /api/tokens")


@dataclass(frozen=True)
class Caller:
    """The owner a call acts for, and whether it came with an API token rather than a password."""

    owner: str
    by_token: bool = False


def caller(
    request: Request,
    credentials: Annotated[HTTPBasicCredentials | None, Depends(_basic)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    """The caller of a REST call: the HTTP basic user, the owner of a Bearer API token, or the local user."""
    ctx: AppContext = request.app.state.ctx
    if not ctx.users.enabled:
        return Caller(ctx.local_owner)  # an OpenAI client sends some api_key anyway; there is nobody to check it for
    if bearer is not None:
        owner = ctx.tokens.owner_of(bearer.credentials)
        if owner is None or owner not in ctx.users.passwords:  # a user taken off the server takes their tokens along
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                f"the API token is unknown or revoked; {MAKE_A_TOKEN}",
                headers={"WWW-Authenticate": f'Bearer realm="{REALM}", error="invalid_token"'},
            )
        return Caller(owner, by_token=True)
    if credentials is None or not ctx.users.check(credentials.username, credentials.password):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "log in with HTTP basic auth (curl -u user:password), or send an API token as "
            f"'Authorization: Bearer fp-...'; {MAKE_A_TOKEN}",
            headers={"WWW-Authenticate": f'Basic realm="{REALM}"'},
        )
    return Caller(credentials.username)


def _owner(who: Annotated[Caller, Depends(caller)]) -> str:
    return who.owner


def _password_owner(who: Annotated[Caller, Depends(caller)]) -> str:
    # A leaked token must not be able to mint tokens that outlive its own revocation.
    if who.by_token:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, "API tokens are managed with your password: curl -u user:password"
        )
    return who.owner


Owner = Annotated[str, Depends(_owner)]
PasswordOwner = Annotated[str, Depends(_password_owner)]


class TokenRequest(BaseModel):
    """Body of POST /api/tokens."""

    name: str = Field(default="", max_length=MAX_NAME_CHARS, description="What the token is for, to tell it apart.")


def token_routes(router: APIRouter, ctx: AppContext) -> None:
    """POST, GET and DELETE /api/tokens: the caller's API tokens (making one needs the password, not a token)."""

    @router.post("/tokens", status_code=status.HTTP_201_CREATED, tags=["tokens"])
    def create_token(owner: PasswordOwner, body: TokenRequest | None = None):
        """A new API token; its secret is in this answer only (the server keeps a hash), so store it now."""
        token, secret = ctx.tokens.create(owner, body.name if body else "")
        return {**token.to_dict(), "token": secret}

    @router.get("/tokens", tags=["tokens"])
    def list_tokens(owner: Owner, revoked: bool = False):
        """Your API tokens, newest first, without their secrets (?revoked=true: revoked ones too)."""
        return {"tokens": [token.to_dict() for token in ctx.tokens.list(owner, include_revoked=revoked)]}

    @router.delete("/tokens/{token_id}", tags=["tokens"])
    def revoke_token(token_id: str, owner: Owner):
        """Revoke one of your tokens: it answers 401 from now on."""
        if not ctx.tokens.revoke(token_id, owner):
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no active token {token_id!r}; GET /api/tokens lists them")
        return {"id": token_id, "revoked": True}
