FROM python:3.12-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY evalsite ./evalsite
COPY datasets ./datasets
COPY reviews ./reviews
RUN pip install .
COPY . .
RUN DEBUG=1 python manage.py collectstatic --noinput
RUN useradd --create-home evalsite && mkdir -p /app/media && chown evalsite /app/media
USER evalsite
EXPOSE 8000
