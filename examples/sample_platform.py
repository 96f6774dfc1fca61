"""A sample chat platform for the chat-integrator hub (transport ``rest``), in one file.

It plays the platform side of the hub's wire contract: it serves ``GET users`` and receives
``POST user|room|message|notification`` from the hub under ``/api/``, checking the bearer token
and the Standard Webhooks signature and dropping duplicate ``webhook-id``s. Its page at ``/``
shows what it knows and lets you create rooms and send messages through the hub.
Everything lives in memory: restart it and it starts empty (the hub still knows it all).
"""

import argparse
import hmac
import json
import logging
import re
import sys
import threading
import zlib
from collections import OrderedDict, deque
from datetime import datetime
from typing import Any

import requests
from flask import Flask, abort, jsonify, redirect, render_template_string, request, url_for
from standardwebhooks import Webhook, WebhookVerificationError

TIMEOUT = 5  # seconds, for every call to the hub
SEEN_MAX = 1000  # recent webhook ids remembered to drop duplicates
LOG_MAX = 200  # messages kept for the page
NAMES = ["Grace Heidi", "Ivan Judy", "Erin Frank", "Carol Dave", "Mallory Niaj", "Alice Bob"]
EXAMPLES = """examples:
  %(prog)s --name GWT_CHAT --port 8081 --token 1111 --user 1:Alice --user 2:Bob
  %(prog)s create-room --token 1111 --id 1 --name lobby --member GWT_CHAT:1 --member NET_CHAT:2
  %(prog)s send --token 1111 --room-platform GWT_CHAT --room 1 --sender 1 "hello"
serve is the default command; see '%(prog)s serve --help' for its options."""
USER_HELP = "a local user, repeatable (default: two made-up users, 1 and 2)"

LocalId = int | str
Json = dict[str, Any]


def local_id(text: str) -> LocalId:
    """An id typed by a person: an int when it looks like one, else the string as given."""
    return int(text) if re.fullmatch(r"-?\d+", text.strip()) else text.strip()


def global_id(text: str) -> str:
    """Check a --member argument is PLATFORM:ID."""
    if ":" not in text.strip(":"):
        raise argparse.ArgumentTypeError(f"{text!r} is not PLATFORM:ID")
    return text


def user_arg(text: str) -> tuple[LocalId, str]:
    """A --user argument, ID:NAME, as (local id, name)."""
    uid, sep, name = text.partition(":")
    if not (sep and uid and name):
        raise argparse.ArgumentTypeError(f"{text!r} is not ID:NAME")
    return local_id(uid), name


def default_users(platform: str) -> list[tuple[LocalId, str]]:
    """Two made-up users, the same two for the same platform name every time."""
    return list(enumerate(NAMES[zlib.crc32(platform.upper().encode()) % len(NAMES)].split(), 1))


def group_members(global_ids: list[str], known: dict[str, Json]) -> list[dict[str, list]]:
    """["GWT_CHAT:1", "NET_CHAT:2"] -> [{"GWT_CHAT": [1]}, {"NET_CHAT": [2]}]."""
    groups: dict[str, list[LocalId]] = {}
    for gid in global_ids:
        user = known.get(gid)  # a known user keeps the id as its platform typed it
        platform, lid = (user["platform"], user["id"]) if user else gid.split(":", 1)
        groups.setdefault(platform, []).append(lid if user else local_id(lid))
    return [{platform: ids} for platform, ids in groups.items()]


def message_body(room_platform: str, room: LocalId, sender: LocalId, text: str) -> Json:
    """The body of the hub's POST /message."""
    body = {"roomOriginalPlatform": room_platform, "roomId": room}
    return {**body, "senderId": sender, "text": text}


def hub_call(
    hub: str, token: str, path: str, body: Json | None = None, method: str = "POST"
) -> tuple[int, Any]:
    """Call the hub as this platform; returns (HTTP status, JSON answer or text)."""
    url, headers = hub.rstrip("/") + path, {"Authorization": f"Bearer {token}"}
    answer = requests.request(method, url, json=body, headers=headers, timeout=TIMEOUT)
    try:
        return answer.status_code, answer.json()
    except ValueError:
        return answer.status_code, answer.text


class SamplePlatform:
    """The in-memory state of one platform, and what it does with each hub event."""

    def __init__(self, name: str, token: str, hub: str, users: list[tuple[LocalId, str]]):
        self.name, self.token, self.hub = name, token, hub
        self.webhook = Webhook(token) if token.startswith("whsec_") else Webhook(token.encode())
        self.own = {f"{name}:{i}": {"id": i, "name": n, "platform": name} for i, n in users}
        self.foreign: dict[str, Json] = {}  # users of other platforms, by global id
        self.rooms: dict[str, Json] = {}  # by global id, own rooms included
        self.log: deque[Json] = deque(maxlen=LOG_MAX)
        self.seen: OrderedDict[str, None] = OrderedDict()
        self.lock = threading.Lock()

    def say(self, line: str) -> None:
        print(f"[{self.name}] {line}\n", end="", flush=True)  # one write: threads don't mix

    def on_user(self, u: Json) -> str:
        gid = u.get("globalId") or f"{u['platform']}:{u['id']}"
        verb = "updated" if gid in self.foreign else "new"
        self.foreign[gid] = {**u, "globalId": gid}
        return f"{verb} user {gid} ({u['name']})"

    def on_room(self, r: Json) -> str:
        gid = r.get("globalId") or f"{r['platform']}:{r['id']}"
        members = [f"{p}:{i}" for group in r["users"] for p, ids in group.items() for i in ids]
        if r["type"] != "public" and not any(m in self.own for m in members):
            self.rooms.pop(gid, None)  # an update that removed all our users
            return f"room {gid} dropped: none of our users is in it any more"
        self.rooms[gid] = {**r, "globalId": gid, "members": members}
        return f'room {gid} "{r["name"]}" ({r["type"]}) members: {", ".join(members)}'

    def on_message(self, m: Json) -> str:
        room = m.get("roomGlobalId") or f"{m['roomOriginalPlatform']}:{m['roomId']}"
        sender = m.get("senderGlobalId") or f"{m['senderPlatform']}:{m['senderId']}"
        urls = [a.get("url") for a in m.get("attachments") or [] if isinstance(a, dict)]
        text = " ".join([m["text"], *(f"[file {url}]" for url in urls)])
        self.record(room, sender, m.get("senderName", "?"), text)
        return f"message in {room} from {sender} ({m.get('senderName', '?')}): {text}"

    def on_notification(self, n: Json) -> str:
        self.record("-", "hub", "notification", f"{n['title']}: {n['body']}")
        return f"notification (priority {n.get('priority', 0)}): {n['title']}: {n['body']}"

    def record(self, room: str, sender: str, name: str, text: str) -> None:
        at = datetime.now().strftime("%H:%M:%S")
        self.log.append({"at": at, "room": room, "sender": sender, "name": name, "text": text})

    def receive(self, kind: str, event_id: str, event: Json) -> tuple[int, str]:
        """Store one verified event once; a replayed webhook-id is acknowledged, not stored."""
        with self.lock:
            if event_id in self.seen:
                self.say(f"duplicate {kind} event {event_id} dropped")
                return 200, "duplicate, already stored"
            try:
                line = getattr(self, f"on_{kind}")(event)
            except (KeyError, TypeError, AttributeError, ValueError) as exc:
                self.say(f"{kind} refused with 400: unreadable, {exc!r}")
                return 400, f"unreadable {kind}: {exc!r}"
            self.seen[event_id] = None
            if len(self.seen) > SEEN_MAX:
                self.seen.popitem(last=False)
        self.say(line)
        return 200, "stored"

    def to_hub(self, path: str, body: Json) -> tuple[bool, str]:
        """Call the hub from the page; returns (accepted, a line to show)."""
        try:
            status, answer = hub_call(self.hub, self.token, path, body)
        except requests.RequestException as exc:
            return False, f"hub unreachable: {exc.__class__.__name__}"
        text = answer.get("message", answer) if isinstance(answer, dict) else answer
        errors = answer.get("errors", "") if isinstance(answer, dict) else ""
        self.say(f"POST {path} -> HTTP {status} {text} {errors}".rstrip())
        return 200 <= status < 300, f"POST {path}: HTTP {status} {text} {errors}".rstrip()

    def announce(self) -> None:
        """Tell the hub we are (back) up and who our users are, learn its users; never fatal."""
        try:
            status, _ = hub_call(self.hub, self.token, "/ping")
            if status == 401:
                return self.say("WARNING: the hub refused our token: is it in platforms.json?")
            self.say(f"pinged the hub at {self.hub}: HTTP {status}")
            for user in self.own.values():
                self.to_hub("/user", {"id": user["id"], "name": user["name"]})
            status, users = hub_call(self.hub, self.token, "/users", method="GET")
        except requests.RequestException as exc:
            why = exc.__class__.__name__
            return self.say(f"WARNING: no hub at {self.hub} ({why}); serving anyway")
        with self.lock:  # a restarted sample knows the other users again at once
            for user in users if status == 200 and isinstance(users, list) else []:
                if user.get("platform", "").lower() != self.name.lower():
                    self.foreign.setdefault(user["globalId"], user)


PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>{{ p.name }}</title><style>
body{font:14px sans-serif;margin:1em 2em} td,th{padding:2px 10px;text-align:left}
.note{background:#ffd;padding:4px} h2{margin:1em 0 .3em}</style></head><body>
<h1>{{ p.name }} <small>sample platform &middot; hub {{ p.hub }}</small></h1>
{% if note %}<p class="note">{{ note }}</p>{% endif %}
<h2>Send a message</h2><form method="post" action="{{ url_for('send') }}">
<select name="room">{% for gid, r in p.rooms.items() %}<option value="{{ gid }}">{{ gid }}
 {{ r.name }}</option>{% else %}<option value="">(no room yet)</option>{% endfor %}</select>
as <select name="sender">{% for gid, u in p.own.items() %}<option value="{{ gid }}">{{ u.name }}
 ({{ gid }})</option>{% endfor %}</select> <input type="text" name="text" size="40" required>
<button>Send</button></form>
<h2>Messages <small>(newest first)</small></h2><table>
{% for m in p.log|reverse %}<tr><td>{{ m.at }}</td><td>{{ m.room }}</td>
<td>{{ m.name }} ({{ m.sender }})</td><td>{{ m.text }}</td></tr>
{% else %}<tr><td>none yet</td></tr>{% endfor %}</table>
<h2>Rooms</h2><ul>{% for gid, r in p.rooms.items() %}<li>{{ gid }} "{{ r.name }}" ({{ r.type }}):
{{ r.members|join(", ") }}</li>{% else %}<li>none yet</li>{% endfor %}</ul>
<h2>Users, and a new room</h2><form method="post" action="{{ url_for('new_room') }}">
{% for gid, u in users.items() %}<label><input type="checkbox" name="member" value="{{ gid }}">
{{ gid }} {{ u.name }}{% if gid in p.own %} (ours){% endif %}</label><br>{% endfor %}
room id <input type="text" name="id" size="4" required> name <input type="text" name="name"
required> <select name="type"><option>private</option><option>public</option></select>
<button>Create room with the checked users</button></form>
<script>/* reload every 2 s, unless you are busy with a form */
setInterval(() => { const busy = document.activeElement.closest("form") || [...document
  .querySelectorAll("input")].some(i => i.checked || (i.type === "text" && i.value));
  if (!busy) location.reload(); }, 2000);</script></body></html>"""


def create_app(p: SamplePlatform) -> Flask:
    app = Flask(__name__)

    @app.get("/api/users")
    def users() -> Any:
        return jsonify([{"id": u["id"], "name": u["name"]} for u in p.own.values()])

    @app.post("/api/<kind>")
    def hub_event(kind: str) -> Any:
        if kind not in ("user", "room", "message", "notification"):
            abort(404)
        auth = request.headers.get("Authorization", "").encode()
        if not hmac.compare_digest(auth, f"Bearer {p.token}".encode()):
            p.say(f"{kind} refused with 401: wrong or missing bearer token")
            return jsonify(status=401, message="wrong or missing bearer token"), 401
        body = request.get_data(as_text=True)
        try:
            p.webhook.verify(body, dict(request.headers), json_parse=False)
            event = json.loads(body)
        except (WebhookVerificationError, ValueError) as exc:
            status = 400 if isinstance(exc, json.JSONDecodeError) else 401
            p.say(f"{kind} refused with {status}: {exc}")
            return jsonify(status=status, message=f"refused: {exc}"), status
        status, message = p.receive(kind, request.headers["webhook-id"], event)
        return jsonify(status=status, message=message), status

    @app.get("/")
    def index() -> str:
        with p.lock:  # the hub may be writing while we render
            users, note = {**p.own, **p.foreign}, request.args.get("note")
            return render_template_string(PAGE, p=p, users=users, note=note)

    @app.post("/send")
    def send() -> Any:
        room, sender = p.rooms.get(request.form["room"]), p.own[request.form["sender"]]
        if room is None:
            return redirect(url_for("index", note="create or join a room first"))
        body = message_body(room["platform"], room["id"], sender["id"], request.form["text"])
        ok, note = p.to_hub("/message", body)
        if ok:  # the hub sends it to every other member platform, not back to us
            with p.lock:
                p.record(room["globalId"], request.form["sender"], sender["name"], body["text"])
        return redirect(url_for("index", note=note))

    @app.post("/room")
    def new_room() -> Any:
        form, rid = request.form, local_id(request.form["id"])
        groups = group_members(form.getlist("member"), {**p.own, **p.foreign})
        body = {"id": rid, "name": form["name"], "type": form["type"], "users": groups}
        ok, note = p.to_hub("/room", body)
        if ok:  # the hub sends our own room to the others only
            with p.lock:
                p.on_room({**body, "platform": p.name, "globalId": f"{p.name}:{rid}"})
        return redirect(url_for("index", note=note))

    return app


def print_answer(hub: str, token: str, path: str, body: Json) -> int:
    try:
        status, answer = hub_call(hub, token, path, body)
    except requests.RequestException as exc:
        print(f"hub unreachable at {hub}: {exc}", file=sys.stderr)
        return 2
    print(f"HTTP {status} {json.dumps(answer)}")
    return 0 if 200 <= status < 300 else 1


def build_parser() -> argparse.ArgumentParser:
    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, epilog=EXAMPLES, formatter_class=fmt)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--hub", default="http://127.0.0.1:5000", help="hub base URL (%(default)s)")
    common.add_argument("--token", required=True, help="this platform's token at the hub")
    sub = parser.add_subparsers(dest="command", title="commands")
    serve = sub.add_parser("serve", parents=[common], help="run the platform (default command)")
    serve.add_argument("--name", required=True, help="platform name, as registered at the hub")
    serve.add_argument("--port", type=int, default=8081, help="port to listen on (%(default)s)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (%(default)s)")
    serve.add_argument("--user", action="append", type=user_arg, metavar="ID:NAME", help=USER_HELP)
    send = sub.add_parser("send", parents=[common], help="send a message through the hub")
    send.add_argument("--room-platform", required=True, help="platform the room comes from")
    send.add_argument("--room", required=True, type=local_id, help="room id on that platform")
    send.add_argument("--sender", required=True, type=local_id, help="local id of our sender")
    send.add_argument("text", help="the message")
    room = sub.add_parser("create-room", parents=[common], help="create or update one of our rooms")
    room.add_argument("--id", required=True, type=local_id, help="the room's local id")
    room.add_argument("--name", required=True, help="the room's name")
    room.add_argument("--type", choices=["private", "public"], default="private")
    member = {"action": "append", "required": True, "type": global_id, "metavar": "PLATFORM:ID"}
    room.add_argument("--member", **member, help="a member by global id, repeatable")
    return parser


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("serve", "send", "create-room", "-h", "--help"):
        argv = ["serve", *argv]
    args = build_parser().parse_args(argv)
    if args.command == "send":
        body = message_body(args.room_platform, args.room, args.sender, args.text)
        return print_answer(args.hub, args.token, "/message", body)
    if args.command == "create-room":
        users = group_members(args.member, {})
        body = {"id": args.id, "name": args.name, "type": args.type, "users": users}
        return print_answer(args.hub, args.token, "/room", body)
    platform = SamplePlatform(
        args.name, args.token, args.hub, args.user or default_users(args.name)
    )
    names = ", ".join(f"{gid} ({user['name']})" for gid, user in platform.own.items())
    platform.say(f"users {names}; page at http://{args.host}:{args.port}/")
    threading.Timer(1.0, platform.announce).start()  # once the server listens
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    create_app(platform).run(host=args.host, port=args.port, threaded=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
