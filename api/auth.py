"""Optional API keys: `Authorization: Bearer KEY`, compared in constant time against every configured key."""

from __future__ import annotations

import hmac

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import SecretStr

from ingest.core.errors import AuthenticationError

bearer = HTTPBearer(auto_error=False, description="One of the keys in the setting server.api_keys.")


class ApiKeys:
    """A FastAPI dependency; with no keys configured every request passes."""

    def __init__(self, keys: list[SecretStr]) -> None:
        self._keys = [k.get_secret_value().encode("utf-8") for k in keys]

    @property
    def enabled(self) -> bool:
        return bool(self._keys)

    def __call__(self, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:
        if not self._keys:
            return
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise AuthenticationError("this server needs an API key: send `Authorization: Bearer KEY`")
        given = credentials.credentials.encode("utf-8")
        matched = False
        for key in self._keys:  # no early exit: the time taken does not tell which key came close
            matched |= hmac.compare_digest(given, key)
        if not matched:
            raise AuthenticationError("the API key is not valid")
