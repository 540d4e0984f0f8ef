"""A real SMTP server (aiosmtpd) for the leak notification tests.

Listens on 127.0.0.1 at the port given as the first argument (0 picks one),
prints "listening PORT" once ready, then one JSON line per message received:
{"from", "to", "subject", "body", "headers"}. Runs until its standard input
closes.
"""

import email
import email.policy
import json
import socket
import sys

from aiosmtpd.controller import Controller


class Sink:
    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        body = message.get_body(preferencelist=("plain",))
        print(
            json.dumps(
                {
                    "from": envelope.mail_from,
                    "to": envelope.rcpt_tos,
                    "subject": str(message["subject"]),
                    "body": body.get_content() if body else "",
                    "headers": {name.lower(): str(value) for name, value in message.items()},
                }
            ),
            flush=True,
        )
        return "250 Message accepted"


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    if port == 0:
        # aiosmtpd needs a concrete port: take one the kernel hands out.
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
    controller = Controller(Sink(), hostname="127.0.0.1", port=port)
    controller.start()
    print(f"listening {controller.port}", flush=True)
    sys.stdin.read()
    controller.stop()


if __name__ == "__main__":
    main()
