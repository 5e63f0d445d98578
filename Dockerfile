# One image for every example service: `docker compose up` picks the service by its command,
# e.g. `eventkit run examples.shop.cart:svc`, and configures it by environment (EVENTKIT_*).
FROM python:3.12-slim
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY eventkit ./eventkit
# The base install brings the command and NATS; RabbitMQ, the examples' web parts and
# OpenTelemetry are extras.
RUN pip install ".[rabbitmq,examples,otel]"
COPY examples ./examples
RUN useradd --system --no-create-home eventkit
USER eventkit
ENV EVENTKIT_BROKER=nats://nats:4222
CMD ["eventkit", "run", "examples.helloworld.service:svc"]
