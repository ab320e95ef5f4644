# Production image: slim Python, non-root user, health check. Linted with hadolint
# (tests/test_deployment.py); no Docker engine runs in this repo's CI, so it is not built there.
FROM python:3.11-slim AS runtime

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DATA_DIR=/data \
    PORT=8000

WORKDIR /srv
# Dependencies first: this layer is rebuilt only when requirements.txt changes.
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt \
    && groupadd --gid 10001 quant \
    && useradd --uid 10001 --gid 10001 --create-home --shell /usr/sbin/nologin quant \
    && mkdir -p /data \
    && chown 10001:10001 /data

COPY --chown=10001:10001 app ./app
COPY --chown=10001:10001 scripts ./scripts
COPY --chown=10001:10001 supabase ./supabase
USER 10001:10001

# The port is $PORT (8000 unless set, e.g. by docker-compose.yml or the host).
EXPOSE 8000
VOLUME ["/data"]
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as r; r.urlopen('http://127.0.0.1:%s/health/live' % os.environ.get('PORT', '8000'), timeout=4)"]

# Several workers: the rate-limit counters must then live in Redis (RATE_LIMIT_STORAGE_URI)
# and the schedulers take a lease in the store, so exactly one worker runs each job.
# --no-proxy-headers: the app alone resolves the client IP, trusting X-Forwarded-For only from
# TRUSTED_PROXIES (uvicorn would otherwise let any loopback peer choose its address).
# Exec form; `sh -c` only expands $PORT and $WEB_CONCURRENCY, then `exec` makes uvicorn PID 1
# so it receives the stop signal.
CMD ["sh", "-c", "exec uvicorn app.main:app --host 0.0.0.0 --port ${PORT} --workers ${WEB_CONCURRENCY:-2} --no-access-log --no-proxy-headers"]
