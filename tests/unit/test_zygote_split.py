"""A JVM command line taken apart for a started JVM, and what keeps an app from one."""

from __future__ import annotations

import pytest

from jvmbridge.errors import UsageError
from kernel.vm import zygote
from osv_java import options

JAVA = "/osv/jre/bin/java"


def test_a_jar_and_a_class_path() -> None:
    jar = zygote.split([JAVA, "-Xmx1g", "-jar", "/app/a.jar", "x", "-cp"], "app.Main", 2)
    assert jar == zygote.Launch((JAVA, "-Xmx1g"), "/app/a.jar", "app.Main", "/app/a.jar", ("x", "-cp"))
    assert jar.fields() == ["/app/a.jar", "app.Main", "/app/a.jar", "x", "-cp"]
    cp = zygote.split([JAVA, "-cp", "/app/a.jar:/lib/b.jar", "app.Main"], "app.Main", 0)
    assert cp == zygote.Launch((JAVA,), "/app/a.jar:/lib/b.jar", "app.Main", "app.Main", ())
    argv = cp.zygote_argv()
    assert argv[0] == JAVA and argv[-5:-2] == ["-cp", "/osv/zygote", "osvjava.Zygote"]


def test_what_is_not_taken_apart() -> None:
    assert zygote.split([JAVA, "-cp", "/app/a.jar", "other.Main"], "app.Main", 0) is None
    assert zygote.split([JAVA, "-m", "mod/app.Main"], "app.Main", 0) is None
    for dump in ("-XX:ArchiveClassesAtExit=/tmp/a.jsa", "-XX:AOTCacheOutput=/tmp/a.aot", "-XX:AOTMode=record"):
        assert zygote.split([JAVA, dump, "-jar", "/app/a.jar"], "app.Main", 0) is None  # written at every exit


def test_a_jvm_that_maps_the_apps_archive_starts_with_the_apps_class_path() -> None:
    """An archive is checked against the class path the JVM starts with, which may extend the archive's."""
    for option in ("-XX:SharedArchiveFile=/osv/startup/app.jsa", "-XX:AOTCache=/osv/startup/app.aot"):
        jar = zygote.split([JAVA, option, "-jar", "/app/a.jar", "x"], "app.Main", 1)
        assert jar is not None and jar.archived and jar.fields() == ["/app/a.jar", "app.Main", "/app/a.jar", "x"]
        argv = jar.zygote_argv()
        assert argv[:2] == [JAVA, option] and "--add-opens" not in argv
        assert argv[2:6] == ["-cp", "/app/a.jar:/osv/zygote", "osvjava.Zygote", zygote.FIFO]
    runtime = "/usr/share/java/clojure.jar:/usr/share/java/spec.jar"
    script = zygote.split([JAVA, "-XX:AOTCache=/osv/startup/app.aot", "-cp", runtime, "clojure.main", "/app/m.clj"],
                          "clojure.main", 1, runtime)
    assert script is not None and script.archived and script.runtime == runtime
    assert script.zygote_argv()[-6:] == ["-cp", f"{runtime}:/osv/zygote", "osvjava.Zygote", zygote.FIFO,
                                         zygote.READY_FILE, "clojure.main"]
    # its snapshot is the app's: the key holds the app's image, which another app's does not share
    other = zygote.split([JAVA, "-XX:AOTCache=/osv/startup/app.aot", "-jar", "/app/a.jar", "x"], "app.Main", 1)
    assert other is not None
    assert zygote.key("m", other, [], "/", [], "image-1") != zygote.key("m", other, [], "/", [], "image-2")
    plain = zygote.split([JAVA, "-jar", "/app/a.jar", "x"], "app.Main", 1)
    assert plain is not None and not plain.archived
    assert zygote.key("m", plain, [], "/", [], "image-1") == zygote.key("m", plain, [], "/", [], "image-2")


def test_the_key_is_the_jvms_not_the_apps() -> None:
    one = zygote.split([JAVA, "-Xmx1g", "-jar", "/app/a.jar", "x"], "a.Main", 1)
    two = zygote.split([JAVA, "-Xmx1g", "-cp", "/app/b.jar", "b.Main"], "b.Main", 0)
    other_options = zygote.split([JAVA, "-Xmx2g", "-cp", "/app/b.jar", "b.Main"], "b.Main", 0)
    assert one and two and other_options
    assert zygote.key("m", one, ["A=1"], "/", []) == zygote.key("m", two, ["A=1"], "/", [])
    assert zygote.key("m", one, ["A=1"], "/", []) != zygote.key("m", other_options, ["A=1"], "/", [])
    assert zygote.key("m", one, ["A=1"], "/", []) != zygote.key("m", one, ["A=2"], "/", [])
    assert zygote.key("m", one, [], "/", []) != zygote.key("m", one, [], "/tmp", [])
    assert zygote.key("m", one, [], "/", []) != zygote.key("n", one, [], "/", [])
    assert zygote.key("m", one, [], "/", ["x=1"]) != zygote.key("m", one, [], "/", ["x=2"])  # the policies' settings


def test_manifests_that_need_the_jvms_start() -> None:
    assert zygote.unsupported({"Main-Class": "a.Main", "Class-Path": "lib/b.jar"}) is None
    why = zygote.unsupported({"Main-Class": "a.Main", "Add-Opens": "java.base/java.lang"})
    assert why is not None and "Add-Opens" in why


def test_options_that_rule_a_started_jvm_out() -> None:
    options.check_zygote("vm", False, False, False)
    for args, word in ((("process", False, False, False), "--target process"),
                       (("vm", True, False, False), "--cold-boot"),
                       (("vm", False, True, False), "-v"),
                       (("vm", False, False, True), "--snapshot-when-ready")):
        with pytest.raises(UsageError, match=word):
            options.check_zygote(*args)


def test_options_that_act_at_the_jvms_start_keep_a_jvm_of_the_runs_own() -> None:
    assert zygote.unsuitable(["-Xmx512m", "-Dx=-javaagent:y", "--add-opens", "java.base/java.lang=ALL-UNNAMED"],
                             {"LANG": "C.UTF-8"}) is None
    for option in ("-javaagent:/a/agent.jar", "-agentlib:jdwp=transport=dt_socket", "-Xlog:gc", "-verbose:class",
                   "-XX:+PrintFlagsFinal", "-showversion"):
        why = zygote.unsuitable(["-Xmx512m", option], {})
        assert why is not None and option in why
    assert "JAVA_TOOL_OPTIONS" in (zygote.unsuitable([], {"JAVA_TOOL_OPTIONS": "-Xmx1g"}) or "")


def test_a_scripts_runtime_starts_with_the_zygote() -> None:
    runtime = "/usr/share/java/clojure.jar:/usr/share/java/spec.jar"
    script = zygote.split([JAVA, "-Dx=1", "-cp", runtime, "clojure.main", "/app/main.clj", "world"], "clojure.main", 2,
                          runtime)
    assert script is not None and script.runtime == runtime
    assert script.zygote_argv()[-6:] == ["-cp", f"/osv/zygote:{runtime}", "osvjava.Zygote", zygote.FIFO,
                                         zygote.READY_FILE, "clojure.main"]
    assert script.fields() == [runtime, "clojure.main", "clojure.main", "/app/main.clj", "world"]
    # a class path with more than the runtime's (its order must stay) starts the zygote without it
    mixed = zygote.split([JAVA, "-cp", f"/app/lib.jar:{runtime}", "clojure.main"], "clojure.main", 0, runtime)
    assert mixed is not None and mixed.runtime == "" and mixed.zygote_argv()[-1] == zygote.READY_FILE
