FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

COPY pyproject.toml README.md ./
COPY fablab_ops ./fablab_ops
COPY devices ./devices
COPY manage.py ./
COPY deploy ./deploy
# The modules are compiled here: nothing writes bytecode at run time (PYTHONDONTWRITEBYTECODE, and the app's user
# cannot write /app), so without this every process would compile the whole project at each start (about 0.15 s of
# the ingest's start, its restarts included).
RUN pip install . \
    && python -m compileall -q fablab_ops devices deploy \
    && pybabel compile --domain django --directory fablab_ops/locale \
    && useradd --system --home /app fablab \
    && mkdir -p /app/staticfiles /app/media \
    && chown -R fablab /app/staticfiles /app/media

USER fablab
EXPOSE 8000
CMD ["gunicorn", "-c", "deploy/gunicorn.conf.py", "fablab_ops.wsgi:application"]
