"""A plain Flask (werkzeug) app behind the Laissez gate, served by Python's
reference WSGI server (wsgiref), which maps header names the way CGI does:
`X_Laissez_User` and `X-Laissez-User` both become `HTTP_X_LAISSEZ_USER`,
joined with a comma when both are sent. Werkzeug routes on the fully
percent-decoded path (`/%61dmin` is `/admin`, `%2F` is `/`) and merges
repeated slashes. It knows nothing about authentication and keeps a record
of every request that reaches it, which the test reads directly (not
through the gate) at `/__seen`.

Usage: python werkzeug_app.py PORT
"""

import json
import sys
import threading
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from flask import Flask, jsonify, request

app = Flask(__name__)
seen = []
lock = threading.Lock()


def record():
    entry = {
        "method": request.method,
        "path": request.path,
        "headers": {k: v for k, v in request.environ.items() if k.startswith("HTTP_")},
        "content_length": request.environ.get("CONTENT_LENGTH", ""),
        "body": request.get_data().decode("utf-8", "replace"),
    }
    with lock:
        seen.append(entry)
    return entry


@app.route("/__seen")
def log():
    with lock:
        return jsonify(seen)


@app.route("/admin", methods=["GET", "POST"])
@app.route("/admin/<path:rest>", methods=["GET", "POST"])
def admin(rest=""):
    record()
    return jsonify(area="admin", rest=rest)


@app.route("/mcp", methods=["POST"])
def mcp():
    record()
    # Python's json reads what a strict parser refuses (a BOM, NaN, lone
    # surrogates): the app would act on a call the gate could not see.
    try:
        message = json.loads(request.get_data())
    except ValueError:
        return jsonify(error="not json"), 400
    messages = message if isinstance(message, list) else [message]
    called = [
        m.get("params", {}).get("name")
        for m in messages
        if isinstance(m, dict) and m.get("method") == "tools/call"
    ]
    return jsonify(jsonrpc="2.0", id=1, result={"called": called})


@app.route("/", defaults={"rest": ""}, methods=["GET", "POST"])
@app.route("/<path:rest>", methods=["GET", "POST"])
def anything(rest):
    entry = record()
    return jsonify(area="public", path=request.path, headers=entry["headers"])


class Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class QuietHandler(WSGIRequestHandler):
    def log_message(self, *args):
        pass


if __name__ == "__main__":
    port = int(sys.argv[1])
    make_server("127.0.0.1", port, app, server_class=Server, handler_class=QuietHandler).serve_forever()
