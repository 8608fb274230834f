"""tls_echo.py: a TLS echo server on 127.0.0.1 for the connector's TCPS tests.

    python3 tls_echo.py --cert C --key K --port-file F

Each client's bytes come back until it half-closes; then the server ends its side with
close_notify. The port the kernel picked is written to F once listening.
"""
import argparse
import socket
import ssl
import threading


def handle(ctx, conn):
    try:
        s = ctx.wrap_socket(conn, server_side=True)
        while True:
            b = s.recv(65536)
            if not b:
                break
            s.sendall(b)
        try:
            s.unwrap()
        except (OSError, ssl.SSLError):
            pass
        s.close()
    except (OSError, ssl.SSLError) as e:
        print("tls_echo: client failed:", e, flush=True)
        conn.close()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--port-file", required=True)
    a = p.parse_args()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(a.cert, a.key)
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)
    with open(a.port_file, "w") as f:
        f.write(str(srv.getsockname()[1]))
    print("tls_echo listening on", srv.getsockname(), flush=True)
    while True:
        c, _ = srv.accept()
        threading.Thread(target=handle, args=(ctx, c), daemon=True).start()


if __name__ == "__main__":
    main()
