"""Ingest jobs: what an upload became, while it runs and after; retrying one the server did not finish."""

from __future__ import annotations

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool

from api.deps import State
from api.responses import JobList, JobOut
from ingest.core.errors import NotFoundError

router = APIRouter(tags=["jobs"])


@router.get("/v1/jobs", summary="Recent ingest jobs, newest first", response_model=JobList)
async def jobs(state: State, limit: int = Query(50, ge=1, le=500)) -> JobList:
    found = await run_in_threadpool(state.jobs.store.recent, limit)
    return JobList(jobs=[JobOut(**j.to_dict()) for j in found])


@router.get("/v1/jobs/{job_id}", summary="An ingest job: state, progress per stage, per-file results",
            response_model=JobOut)
async def job(job_id: str, state: State) -> JobOut:
    found = await run_in_threadpool(state.jobs.store.get, job_id)
    if found is None:
        raise NotFoundError(f"no job {job_id!r}")
    return JobOut(**found.to_dict())


@router.post("/v1/jobs/{job_id}/retry", status_code=202, summary="Run an interrupted or failed job again",
             response_model=JobOut)
async def retry(job_id: str, state: State) -> JobOut:
    state.require_writer("retrying an ingest job")
    return JobOut(**(await run_in_threadpool(state.jobs.retry, job_id)).to_dict())
