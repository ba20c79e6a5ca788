"""Online: the FastAPI service that loads model bundles and answers /predict and /recommend."""

import os

# onnxruntime's official builds send usage telemetry to Microsoft unless this is set before the
# library initialises. A service in a store's request path must not phone home; an operator who
# wants it can set ORT_DISABLE_TELEMETRY=0 explicitly.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
