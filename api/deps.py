"""FastAPI dependencies: the one AppState of the app, and the API-key check, as annotated parameters."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from api.state import AppState


def app_state(request: Request) -> AppState:
    """The state `create_app` built for this app (one per app, so two apps in one process never mix)."""
    state: AppState = request.app.state.citewise
    return state


State = Annotated[AppState, Depends(app_state)]
