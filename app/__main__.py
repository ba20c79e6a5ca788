"""`python -m app`: serve with uvicorn as the settings say (host, port, workers, grace period)."""

import uvicorn

from app.settings import get_settings


def main() -> None:
    settings = get_settings()
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        timeout_graceful_shutdown=settings.shutdown_grace_seconds,
        server_header=False,
        access_log=False,  # the service writes its own access lines (app.observability)
        log_level=settings.log_level,
    )


if __name__ == "__main__":
    main()
