#!/usr/bin/env bash
# Compile the Android-free core and run its JUnit 4 tests on the host JDK: no Gradle, no
# Android SDK. The main sources compile with --release 8, which keeps them to the Java API that
# Android (minSdk 26) also has; the tests may use any JDK 17 API. org.json, which Android has in
# its platform, comes from Debian's libandroid-json-org-java (Android's own implementation).
#   android_runner/core/test.sh             # build into android_runner/core/build/
#   BUILD_DIR=/tmp/x android_runner/core/test.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
build="${BUILD_DIR:-$here/build}"
junit="${JUNIT_JAR:-/usr/share/java/junit4.jar}"
hamcrest="${HAMCREST_JAR:-/usr/share/java/hamcrest-core.jar}"
json="${JSON_JAR:-/usr/share/java/json-android.jar}"

fail() { echo "test.sh: $*" >&2; exit 2; }
command -v javac >/dev/null || fail "javac not found: install a JDK 17 (make system-deps)"
command -v java >/dev/null || fail "java not found: install a JDK 17 (make system-deps)"
[ -f "$junit" ] || fail "$junit not found: install junit4 (make system-deps) or set JUNIT_JAR"
[ -f "$hamcrest" ] || fail "$hamcrest not found: install junit4 (make system-deps) or set HAMCREST_JAR"
[ -f "$json" ] || fail "$json not found: install libandroid-json-org-java (make system-deps) or set JSON_JAR"

rm -rf "$build/classes"
mkdir -p "$build/classes/main" "$build/classes/test"
find "$here/src/main/java" -name '*.java' | sort > "$build/main-sources.txt"
find "$here/src/test/java" -name '*.java' | sort > "$build/test-sources.txt"

javac --release 8 -encoding UTF-8 -Xlint:all,-options -Werror \
  -cp "$json" -d "$build/classes/main" @"$build/main-sources.txt"
javac --release 17 -encoding UTF-8 -Xlint:all -Werror \
  -cp "$build/classes/main:$json:$junit:$hamcrest" -d "$build/classes/test" @"$build/test-sources.txt"

# Test classes: every *Test.java, named by its path under src/test/java.
classes=$(sed -e "s|^$here/src/test/java/||" -e 's|\.java$||' -e 's|/|.|g' "$build/test-sources.txt" | grep 'Test$')
[ -n "$classes" ] || fail "no test classes found"
# shellcheck disable=SC2086
exec java -cp "$build/classes/main:$build/classes/test:$json:$junit:$hamcrest" org.junit.runner.JUnitCore $classes
