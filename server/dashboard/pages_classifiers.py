"""Species classifiers (admins only): the ones in use, the trained ones side by side with their
held-back scores, switching to one (refused when it scores worse than the current trained one), and
retraining from the rangers' reviews in the background (minutes on a station PC: the page says how it
went when it is done)."""

from __future__ import annotations

import logging
import re
import threading
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast

from aiohttp import web
from sqlalchemy.orm import Session

from yaguar.engine.manifest import Manifest, ManifestError

from ..classifier_choice import accuracy, current_classifiers, propose, record, trained_models
from ..retrain import retrain
from .auth import FORM_KEY
from .core import Dashboard, dashboard_of
from .guard import requires
from .refusal import N_

log = logging.getLogger(__name__)

BASE_NAME = re.compile(r"^[a-z0-9][a-z0-9_]{0,40}$")


@dataclass
class RetrainState:
    running: bool = False
    outcome: str | None = None  # a msgid, shown translated
    detail: str = ""  # model name and numbers, language-neutral


_STATES: weakref.WeakKeyDictionary[Dashboard, RetrainState] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def _form(request: web.Request) -> Mapping[str, object]:
    return cast("Mapping[str, object]", request[FORM_KEY])


def _state(dash: Dashboard) -> RetrainState:
    with _LOCK:
        return _STATES.setdefault(dash, RetrainState())


async def _page(
    request: web.Request, status: int = 200, message: str | None = None, detail: str = ""
) -> web.Response:
    dash = dashboard_of(request)
    pipeline = dash.ctx.config.pipeline
    in_use = await dash.read(lambda db: current_classifiers(db, pipeline))
    models: list[Manifest] = trained_models(pipeline)
    state = _state(dash)
    return await dash.render(
        request,
        "classifiers.html",
        status=status,
        in_use=in_use,
        models=models,
        accuracy=accuracy,
        state=state,
        message=message,
        detail=detail,
    )


@requires("admin")
async def classifiers_page(request: web.Request) -> web.StreamResponse:
    return await _page(request)


@requires("admin")
async def classifier_use(request: web.Request) -> web.StreamResponse:
    dash = dashboard_of(request)
    me = await dash.current_user(request)
    assert me is not None
    name = str(_form(request).get("name") or "")
    pipeline = dash.ctx.config.pipeline

    def decide(db: Session) -> tuple[bool, str]:
        decision, names = propose(db, pipeline, name)
        if decision.allowed:
            record(db, names, me.username, decision.reason)
        return decision.allowed, decision.reason

    try:
        allowed, reason = await dash.write(decide)
    except ManifestError as exc:
        dash.metrics.refused.labels("bad_input").inc()
        return await _page(request, 400, N_("There is no such classifier."), str(exc)[:200])
    log.info("%s asked to use classifier %s: %s", me.username, name, reason)
    if not allowed:
        dash.metrics.refused.labels("bad_input").inc()
        return await _page(request, 409, N_("Not switched: it scores worse than the model in use."), reason)
    return await _page(request, 200, N_("Switched: the station uses it from its next frames."), reason)


@requires("admin")
async def classifier_retrain(request: web.Request) -> web.StreamResponse:
    dash = dashboard_of(request)
    me = await dash.current_user(request)
    assert me is not None
    base = str(_form(request).get("name") or "").strip()
    if not BASE_NAME.match(base):
        dash.metrics.refused.labels("bad_input").inc()
        return await _page(request, 400, N_("The name must be lower-case letters, digits and _."), base[:40])
    state = _state(dash)
    with _LOCK:
        if state.running:
            return await _page(request, 409, N_("A retraining is already running."))
        state.running, state.outcome, state.detail = True, None, ""
    ctx = dash.ctx

    def job() -> None:
        try:
            done = retrain(ctx.session_factory, ctx.config, base, [], me.username, use=True)
            state.outcome = (
                N_("Retrained and switched.") if done.switched else N_("Retrained; kept the model in use.")
            )
            state.detail = f"{done.result.manifest.ident}: {done.decision.reason}"
            dash.metrics.retrains.labels("switched" if done.switched else "kept").inc()
        except Exception as exc:  # a failed training is reported on the page; the station goes on
            log.warning("retraining from reviews failed: %s", exc)
            dash.metrics.retrains.labels("failed").inc()
            state.outcome, state.detail = N_("Retraining failed."), str(exc)[:300]
        finally:
            state.running = False

    threading.Thread(target=job, name="yaguar-retrain", daemon=True).start()
    log.info("%s started retraining %s from reviews", me.username, base)
    raise web.HTTPSeeOther("/classifiers")


def routes() -> list[web.RouteDef]:
    return [
        web.get("/classifiers", classifiers_page),
        web.post("/classifiers/use", classifier_use),
        web.post("/classifiers/retrain", classifier_retrain),
    ]
