"""python_client.py — drives marquee-server from Python grpcio, a gRPC
implementation nobody here wrote: unary, server-, client- and bidi-streaming
calls, metadata echo, deadlines, error statuses and an unknown method, and
the rich error model: grpc_status.rpc_status.from_call must read every
refusal's google.rpc.Status (it checks that code and message match the
call's), with BadRequest listing every bad field.
Usage: python_client.py HOST:PORT. Prints 'N passed, N failed'."""
import sys

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from mqhealth import health_pb2, health_pb2_grpc
from marquee.system.v1 import system_pb2 as pb
from marquee.system.v1 import system_pb2_grpc as rpc
from marquee.identity.v1 import identity_pb2 as idpb
from marquee.identity.v1 import identity_pb2_grpc as idrpc

addr = sys.argv[1]
channel = grpc.insecure_channel(addr)
grpc.channel_ready_future(channel).result(timeout=10)
system = rpc.SystemServiceStub(channel)
diag = rpc.DiagnosticsServiceStub(channel)
health = health_pb2_grpc.HealthStub(channel)
accounts = idrpc.AccountServiceStub(channel)
passed = failed = 0


def check(name, fn):
    global passed, failed
    try:
        fn()
        passed += 1
        print("ok  ", name)
    except Exception as e:  # report and go on
        failed += 1
        print("FAIL", name, repr(e))


def expect_code(code, fn):
    try:
        fn()
    except grpc.RpcError as e:
        assert e.code() == code, f"got {e.code()} ({e.details()})"
        return e
    raise AssertionError(f"expected {code}, call succeeded")


def unary():
    r, call = system.Ping.with_call(pb.PingRequest(payload=b"py"), metadata=[("x-request-id", "py-1")], timeout=5)
    assert r.payload == b"py"
    md = dict(call.initial_metadata())
    assert md.get("x-request-id") == "py-1", md


def server_info():
    info = system.GetServerInfo(pb.GetServerInfoRequest(), timeout=5)
    assert "grpc.health.v1.Health" in info.services, info.services


def server_stream():
    seqs = [m.sequence for m in diag.EchoStream(pb.EchoRequest(message="s", repeat=25), timeout=10)]
    assert seqs == list(range(1, 26)), seqs


def client_stream():
    r = diag.EchoCollect(iter([pb.EchoRequest(message=p) for p in ("py", "th", "on")]), timeout=5)
    assert r.joined == "python" and r.count == 3, r


def bidi():
    out = [m.message for m in diag.EchoChat(iter([pb.EchoRequest(message=f"b{i}") for i in range(4)]), timeout=5)]
    assert out == ["b0", "b1", "b2", "b3"], out


def deadline():
    expect_code(grpc.StatusCode.DEADLINE_EXCEEDED,
                lambda: diag.Echo(pb.EchoRequest(message="slow", delay_ms=3000), timeout=0.3))


def invalid_argument():
    e = expect_code(grpc.StatusCode.INVALID_ARGUMENT,
                    lambda: diag.Echo(pb.EchoRequest(message="x", delay_ms=999999), timeout=5))
    assert "delay_ms" in e.details(), e.details()
    trailers = dict(e.trailing_metadata() or ())
    assert trailers.get("x-error-field") == "delay_ms", trailers


def details(e, kind):
    """The details of type `kind` in the call's google.rpc.Status."""
    status = rpc_status.from_call(e)
    assert status is not None, "no grpc-status-details-bin trailer"
    out = []
    for d in status.details:
        if d.Is(kind.DESCRIPTOR):
            m = kind()
            d.Unpack(m)
            out.append(m)
    return status, out


def rich_invalid_argument():
    e = expect_code(grpc.StatusCode.INVALID_ARGUMENT,
                    lambda: diag.Echo(pb.EchoRequest(message="x", delay_ms=999999), timeout=5))
    status, bad = details(e, error_details_pb2.BadRequest)
    assert status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0], status
    assert len(bad) == 1 and [v.field for v in bad[0].field_violations] == ["delay_ms"], bad
    _, info = details(e, error_details_pb2.ErrorInfo)
    assert info and info[0].reason == "INVALID_ARGUMENT" and info[0].domain == "marquee", info


def rich_every_violation():
    req = idpb.SignUpRequest(email="not-an-address", password="short", display_name="",
                             time_zone="Mars/Olympus")
    e = expect_code(grpc.StatusCode.INVALID_ARGUMENT, lambda: accounts.SignUp(req, timeout=10))
    _, bad = details(e, error_details_pb2.BadRequest)
    fields = [v.field for v in bad[0].field_violations]
    assert fields == ["email", "display_name", "time_zone", "password"], fields
    assert all(v.description for v in bad[0].field_violations), bad
    assert e.details().startswith("email: "), e.details()


def rich_not_found_has_error_info():
    m = channel.unary_unary("/marquee.nothing.v1.Nope/Missing")
    e = expect_code(grpc.StatusCode.UNIMPLEMENTED, lambda: m(b"", timeout=5))
    _, info = details(e, error_details_pb2.ErrorInfo)
    assert info and info[0].reason == "UNIMPLEMENTED", info
    e = expect_code(grpc.StatusCode.UNAUTHENTICATED, lambda: diag.WhoAmI(pb.WhoAmIRequest(), timeout=5))
    _, info = details(e, error_details_pb2.ErrorInfo)
    assert info and info[0].reason == "UNAUTHENTICATED", info


def unauthenticated():
    expect_code(grpc.StatusCode.UNAUTHENTICATED, lambda: diag.WhoAmI(pb.WhoAmIRequest(), timeout=5))
    expect_code(grpc.StatusCode.UNAUTHENTICATED,
                lambda: diag.WhoAmI(pb.WhoAmIRequest(), metadata=[("authorization", "Bearer x.y.z")], timeout=5))


def unknown_method():
    m = channel.unary_unary("/marquee.nothing.v1.Nope/Missing")
    expect_code(grpc.StatusCode.UNIMPLEMENTED, lambda: m(b"", timeout=5))


def health_check():
    r = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
    assert r.status == health_pb2.HealthCheckResponse.SERVING, r


for name, fn in [("unary + metadata", unary), ("server info", server_info), ("server streaming", server_stream),
                 ("client streaming", client_stream), ("bidi streaming", bidi), ("deadline", deadline),
                 ("invalid argument + x-error-field", invalid_argument), ("unauthenticated", unauthenticated),
                 ("unknown method", unknown_method), ("health", health_check),
                 ("rich errors: BadRequest + ErrorInfo", rich_invalid_argument),
                 ("rich errors: every bad field of SignUp", rich_every_violation),
                 ("rich errors: ErrorInfo on other refusals", rich_not_found_has_error_info)]:
    check(name, fn)
channel.close()
print(f"python grpcio: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
