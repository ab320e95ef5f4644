# Production image: slim Python, non-root user, health check. Not built in this repo's CI
# (no Docker engine there); kept plain so it can be checked by reading.
FROM python:3.11-slim AS runtime

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DATA_DIR=/data \
    PORT=8000

WORKDIR /srv
COPY requirements.txt .
RUN pip install -r requirements.txt

RUN useradd --create-home --uid 10001 quant && mkdir -p /data && chown quant:quant /data
COPY --chown=quant:quant app ./app
COPY --chown=quant:quant scripts ./scripts
COPY --chown=quant:quant supabase ./supabase
USER quant

EXPOSE 8000
VOLUME ["/data"]
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD python -c "import os,urllib.request;urllib.request.urlopen(f'http://127.0.0.1:{os.environ.get(\"PORT\",\"8000\")}/health/live',timeout=4)" || exit 1

# Several workers: the rate-limit counters must then live in Redis (RATE_LIMIT_STORAGE_URI)
# and the schedulers take a lease in the store, so exactly one worker runs each job.
# --no-proxy-headers: the app alone resolves the client IP, trusting X-Forwarded-For only from
# TRUSTED_PROXIES (uvicorn would otherwise let any loopback peer choose its address).
CMD ["sh", "-c", "exec uvicorn app.main:app --host 0.0.0.0 --port ${PORT} --workers ${WEB_CONCURRENCY:-2} --no-access-log --no-proxy-headers"]
