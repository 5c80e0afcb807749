# The Clearance API. Built by docker-compose.yml, which points it at a Qdrant server.
FROM python:3.11.7-slim

ENV PYTHONUNBUFFERED=1 DO_NOT_TRACK=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
RUN apt-get update \
    && apt-get install -y --no-install-recommends libmagic1 poppler-utils \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY requirements.lock ./
# torch's CPU build (2.13.0+cpu) lives on PyTorch's own index.
RUN pip install --no-cache-dir --no-deps \
        --extra-index-url https://download.pytorch.org/whl/cpu -r requirements.lock
COPY pyproject.toml README.md ./
COPY answers ./answers
COPY api ./api
COPY application ./application
COPY control ./control
COPY evaluation ./evaluation
COPY identity ./identity
COPY observability ./observability
COPY ingest ./ingest
COPY retrieval ./retrieval
COPY policies ./policies
COPY examples ./examples
COPY clearance.toml ./
RUN pip install --no-cache-dir --no-deps --no-build-isolation .

EXPOSE 8000
CMD ["sh", "-c", "clearance ingest && clearance serve --host 0.0.0.0 --port 8000"]
