#!/usr/bin/env python3
"""Every luoctl command's --json output against docs/luoctl-json-schema.json
(the schema docs/luoctl-json.md describes), on a real service whose name is
all digits (it must stay a string), across a real update.

    json_schema.py LUOCTL COUNTER_V1 COUNTER_V2 SCHEMA
"""
import json
import os
import signal
import subprocess
import sys
import time

LUOCTL, V1, V2, SCHEMA = [os.path.abspath(a) for a in sys.argv[1:5]]
schema = json.load(open(SCHEMA))
failures = 0
checked = set()


def fail(msg):
    global failures
    failures += 1
    print("FAIL:", msg)


def resolve(s):
    while "$ref" in s:
        s = schema["$defs"][s["$ref"].rsplit("/", 1)[1]]
    return s


TYPES = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
}


def validate(v, s, where):
    """Errors of @v against schema @s, as strings."""
    s = resolve(s)
    if "oneOf" in s:
        tries = [validate(v, alt, where) for alt in s["oneOf"]]
        if sum(1 for t in tries if not t) == 1:
            return []
        return ["%s: matches %d of the alternatives: %s" %
                (where, sum(1 for t in tries if not t), tries)]
    errs = []
    types = s["type"] if isinstance(s["type"], list) else [s["type"]]
    if not any(TYPES[t](v) for t in types):
        return ["%s: %r is not %s" % (where, v, " or ".join(types))]
    if "enum" in s and v not in s["enum"]:
        errs.append("%s: %r not in %r" % (where, v, s["enum"]))
    if isinstance(v, dict):
        for k in s.get("required", []):
            if k not in v:
                errs.append("%s: key %s missing" % (where, k))
        for k, x in v.items():
            if k in s.get("properties", {}):
                errs += validate(x, s["properties"][k], where + "." + k)
            elif s.get("additionalProperties", True) is False:
                errs.append("%s: key %s not in the schema" % (where, k))
    if isinstance(v, list) and "items" in s:
        for i, x in enumerate(v):
            errs += validate(x, s["items"], "%s[%d]" % (where, i))
    return errs


def luoctl(*args, want=0):
    """Run luoctl --json ARGS; the parsed output, checked against the
    schema of its command."""
    cmd = [LUOCTL, "--json"] + list(args)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=90)
    if p.returncode != want:
        fail("%s: exit %d, expected %d: %s%s" %
             (" ".join(args), p.returncode, want, p.stdout, p.stderr))
        return None
    try:
        out = json.loads(p.stdout)
    except ValueError as e:
        fail("%s: not JSON (%s): %r" % (" ".join(args), e, p.stdout))
        return None
    name = [a for a in args if a in schema["commands"]][0]
    checked.add(name)
    for e in validate(out, schema["commands"][name], name):
        fail(e)
    return out


name = "%d0" % os.getpid()  # all digits: a string all the same
log = open("/tmp/luo-json-%s.log" % name, "w")
proc = subprocess.Popen([V1, "--size", "4", "--control", name,
                         "--no-finish"], stdout=log, stderr=subprocess.STDOUT)
try:
    for _ in range(200):
        p = subprocess.run([LUOCTL, "-s", name, "status"],
                           capture_output=True)
        if p.returncode == 0:
            break
        time.sleep(0.05)
    s = ["-s", name]
    st = luoctl(*s, "status")
    if st:
        if st["name"] != name:
            fail("a service named %s became %r" % (name, st["name"]))
        if st["last_update_ns"] is not None or st["blackout_ns"] is not None:
            fail("before any update: %r" % st)
        if st["num"] != 0 or st["state"] != "normal":
            fail("status: %r" % st)
    f = luoctl(*s, "files")
    if f and not any(x["token"] == 1 and x["session"] == "luo.control"
                     for x in f):
        fail("files: the listener is not token 1: %r" % f)
    luoctl(*s, "sessions")
    sub = luoctl(*s, "subsystems")
    if sub and not any(x["name"] == "counter" and x["incoming"] is False
                       and x["incoming_data"] is None for x in sub):
        fail("subsystems on a fresh start: %r" % sub)
    luoctl(*s, "devices")
    luoctl(*s, "device", "counter/buffer", "requested", "1")
    d = luoctl(*s, "devices")
    if d and not [x for x in d if x["path"] == "counter/buffer"
                  and x["requested"] is True]:
        fail("devices after a request: %r" % d)
    luoctl(*s, "prepare")
    b = luoctl(*s, "dump", "outgoing")
    if b and not [x for x in b if x["name"] == "LUO" and x["size"] > 0]:
        fail("dump: %r" % b)
    luoctl(*s, "freeze")
    luoctl(*s, "cancel")
    u = luoctl(*s, "update", V2)
    if u:
        if [x["name"] for x in u["stages"]] != \
                ["prepare", "freeze", "exec", "boot", "ready"]:
            fail("update stages: %r" % u["stages"])
        if u["num"] != 1 or u["state"] != "updated" or u["finished"]:
            fail("update: %r" % u)
    st = luoctl(*s, "status")
    if st and (not isinstance(st["last_update_ns"], int) or
               st["num"] != 1):
        fail("status after an update: %r" % st)
    sub = luoctl(*s, "subsystems")
    if sub and not any(x["name"] == "counter" and x["incoming"] is True
                       and isinstance(x["incoming_data"], int) for x in sub):
        fail("subsystems after an update: %r" % sub)
    luoctl(*s, "dump", "incoming")
    luoctl(*s, "finish")
    # From here on the service finishes its updates itself (a spawn-mode
    # commit waits for that).
    u = luoctl(*s, "update", "--finish", V1, "--", "--size", "4",
               "--control", name)
    if u and (not u["finished"] or u["num"] != 2):
        fail("update --finish: %r" % u)
    luoctl("list", "--all")
    lst = luoctl("list")
    if lst is not None:
        mine = [x for x in lst if x["name"] == name]
        if len(mine) != 1 or not mine[0]["reachable"] or \
                mine[0]["pid"] != proc.pid:
            fail("list does not show service %s: %r" % (name, lst))
    # Spawn mode (a transaction): a commit, a trial ended by 'commit',
    # one ended by 'rollback', a new image that fails.
    u = luoctl(*s, "update", "--mode", "spawn", V2)
    if u and (not u["committed"] or u["result"] is None):
        fail("spawn-mode update: %r" % u)
    for end, want in (("commit", 0), ("rollback", 7)):
        bg = subprocess.Popen([LUOCTL, "--json", *s, "update", "--trial",
                               "60s", V1], stdout=subprocess.PIPE, text=True)
        # Until the new image serves: a connection the old image took
        # just before the update waits for the whole trial, so each try
        # gets 2 s and a failure is only a retry.
        for _ in range(100):
            p = subprocess.run([LUOCTL, "--json", "--timeout", "2", *s,
                                "status"], capture_output=True, text=True)
            if p.returncode == 0 and json.loads(p.stdout)["trial"]:
                break
            time.sleep(0.05)
        else:
            fail("no trial shown by status")
        st = luoctl(*s, "status")
        if st and (st["trial"] != "running" or
                   not isinstance(st["trial_left_ms"], int)):
            fail("status during a trial: %r" % st)
        e = luoctl(*s, end)
        if e and not isinstance(e["pid"], int):
            fail("%s: %r" % (end, e))
        out, _ = bg.communicate(timeout=90)
        if bg.returncode != want:
            fail("update --trial ended by %s: exit %d" % (end, bg.returncode))
        else:
            for err in validate(json.loads(out), schema["commands"]["update"],
                                "update --trial"):
                fail(err)
    u = luoctl(*s, "update", "--mode", "spawn", "/bin/false", want=7)
    if u and u["committed"]:
        fail("a failed spawn-mode update: %r" % u)
    missing = set(schema["commands"]) - checked
    if missing:
        fail("commands not checked: %s" % sorted(missing))
finally:
    # The service: this child, or the process a spawn-mode update made.
    p = subprocess.run([LUOCTL, "--json", "-s", name, "status"],
                       capture_output=True, text=True)
    pid = json.loads(p.stdout)["pid"] if p.returncode == 0 else None
    if pid and pid != proc.pid:
        os.kill(pid, signal.SIGTERM)
    proc.terminate()  # the counter stops its server: the socket goes
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    for _ in range(100):
        if not os.path.exists("/run/luo/%s.sock" % name):
            break
        time.sleep(0.05)
    log.close()
    if failures:
        print(open(log.name).read())
    os.unlink(log.name)

if failures:
    print("json-schema: %d failures" % failures)
    sys.exit(1)
print("json-schema: every command's --json output matches the schema")
