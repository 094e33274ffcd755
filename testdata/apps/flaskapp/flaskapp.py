"""A small Flask app (Flask from Debian's python3-flask, via a venv made
with --system-site-packages)."""
from flask import Flask, request

app = Flask(__name__)


@app.route("/")
def index():
    return f"Hello from Flask at {request.host}{request.script_root}/\n"


@app.route("/env")
def env():
    keys = ("SCRIPT_NAME", "PATH_INFO", "UWSGI_CHDIR", "UWSGI_SCRIPT")
    return "".join(f"{k}={request.environ.get(k, '')}\n" for k in keys)


@app.route("/echo", methods=["POST"])
def echo():
    return request.get_data()
