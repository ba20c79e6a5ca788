"""The floor: a bare FastAPI endpoint answering a constant JSON body as long as a /predict answer.

Run by bench/load.py with the same server (uvicorn, uvloop, httptools) as the service.
"""

import os

from fastapi import FastAPI
from fastapi.responses import Response

BODY = os.environ.get("BARE_BODY", '{"ok": true}').encode()

# Configured as the service is: FastAPI's OpenTelemetry layer off (see app/main.py).
app = FastAPI(
    telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False}
)


@app.post("/predict")
async def predict() -> Response:
    return Response(BODY, media_type="application/json")
