#!/bin/sh
# pushplot: send a number or a job's run to a pushplot server from a shell script or a crontab.
# POSIX sh and curl only. Get it from your own server, so that it matches that server's API:
#
#   curl -fsS "$PUSHPLOT_URL/client.sh" -o ~/bin/pushplot && chmod +x ~/bin/pushplot
#
#   pushplot send CHART VALUE [name=value ...]   one point, now, with labels
#   pushplot ping JOB [start|fail|CODE]          a job ping (success without a kind)
#   pushplot run JOB [--] command [args ...]     start, the command, then its exit code with the
#                                                last 10 KB of its output as the run's message
#
# Configured by PUSHPLOT_URL, PUSHPLOT_KEY (an ingest key) and PUSHPLOT_TIMEOUT (seconds for each
# call to the server, 5 by default). Metrics never break the job: a failure to reach the server
# prints one line to stderr and leaves the exit status alone (send and ping exit 0, run exits
# with the command's own status); only a wrong command line exits 2.

PUSHPLOT_TIMEOUT=${PUSHPLOT_TIMEOUT:-5}
pp_url=${PUSHPLOT_URL%/}
pp_told=

usage() {
  cat >&2 <<'USAGE'
usage: pushplot send CHART VALUE [name=value ...]
       pushplot ping JOB [start|fail|CODE]
       pushplot run JOB [--] command [args ...]
PUSHPLOT_URL, PUSHPLOT_KEY and PUSHPLOT_TIMEOUT (seconds, default 5) configure it.
USAGE
  exit 2
}

# One line to stderr, once per invocation.
warn() {
  [ -n "$pp_told" ] && return 0
  pp_told=1
  printf 'pushplot: %s\n' "$*" >&2
}

# A JSON string of $1: quotes, backslashes, tabs and line breaks escaped.
json_str() {
  # Control characters other than tab and line feed (a colour code, a carriage return in a
  # command's output) cannot stand in a JSON string as they are: each becomes "?".
  printf '%s' "$1" | tr '\001-\010\013-\037' '?' | sed 's/\\/\\\\/g; s/"/\\"/g; s/	/\\t/g' |
    awk 'BEGIN { printf "\"" } { printf "%s%s", sep, $0; sep = "\\n" } END { printf "\"" }'
}

# $1 percent-encoded for a URL path segment: everything but letters, digits and -._~
url_segment() {
  printf '%s' "$1" | od -An -v -tu1 | awk '{
    for (i = 1; i <= NF; i++) {
      c = $i + 0
      if ((c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c == 45 || c == 46 || c == 95 || c == 126)
        printf "%c", c
      else
        printf "%%%02X", c
    }
  }'
}

# A number as JSON spells it (+5 -> 5, .5 -> 0.5, 5. -> 5.0, 007 -> 7), or nothing if it is none.
json_number() {
  printf '%s\n' "$1" | grep -Eq '^[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$' || return 1
  printf '%s\n' "$1" | sed 's/^+//; s/^\(-\{0,1\}\)0*\([0-9]\)/\1\2/; s/^\(-\{0,1\}\)\./\10./; s/\.$/.0/; s/\.\([eE]\)/.0\1/'
}

# A private directory for temporary files, removed at exit.
pp_dir=
workdir() {
  [ -n "$pp_dir" ] && return 0
  pp_dir=$(mktemp -d "${TMPDIR:-/tmp}/pushplot.XXXXXX" 2>/dev/null) || {
    pp_dir="${TMPDIR:-/tmp}/pushplot.$$"
    (umask 077 && mkdir "$pp_dir") 2>/dev/null
  } || {
    pp_dir=
    return 1
  }
  trap 'rm -rf "$pp_dir"' EXIT
}

# post PATH CONTENT-TYPE BODY-ARG: POSTs with the key, bounded by PUSHPLOT_TIMEOUT. Returns 0 on a
# 2xx; otherwise sets pp_err to one line saying why and returns curl's status (28: no answer in
# time) or 1 for an HTTP error.
post() {
  pp_err=
  if [ -z "$pp_url" ]; then
    pp_err="PUSHPLOT_URL is not set; nothing sent"
    return 1
  fi
  if [ -z "$pp_dir" ]; then
    pp_err="cannot make a temporary directory in ${TMPDIR:-/tmp}; nothing sent"
    return 1
  fi
  resp="$pp_dir/response" errf="$pp_dir/curl-error" keyf="$pp_dir/key-header"
  # The key goes to curl in a file of this run's private directory (printf is built in), not on
  # its command line, where ps and /proc would show it to every user of the machine.
  (umask 077 && printf 'X-API-Key: %s\n' "${PUSHPLOT_KEY:-}" >"$keyf")
  code=$(curl -sS -m "$PUSHPLOT_TIMEOUT" -o "$resp" -w '%{http_code}' -X POST \
    -H "@$keyf" -H "Content-Type: $2" -H "User-Agent: pushplot.sh/1" \
    --data-binary "$3" "$pp_url$1" 2>"$errf")
  rc=$?
  if [ "$rc" -ne 0 ]; then
    pp_err="$pp_url did not answer: $(sed -n '1s/^curl: ([0-9]*) //p' "$errf")"
    return "$rc"
  fi
  case $code in
    2??) return 0 ;;
  esac
  msg=$(sed -n 's/.*"code":"\([^"]*\)","message":"\([^"]*\)".*/\1: \2/p' "$resp" | cut -c1-300)
  [ -n "$msg" ] || msg=$(sed -n '1p' "$resp" | cut -c1-300)
  pp_err="HTTP $code $msg"
  return 1
}

cmd_send() {
  [ $# -ge 2 ] || usage
  workdir
  chart=$1 value=$2
  shift 2
  labels=
  for kv in "$@"; do
    case $kv in
      *=*) ;;
      *) usage ;;
    esac
    labels="$labels${labels:+,}$(json_str "${kv%%=*}"):$(json_str "${kv#*=}")"
  done
  if ! number=$(json_number "$value"); then
    warn "send $chart: $value is not a number; nothing sent"
    return 0
  fi
  [ -n "$labels" ] && labels=",\"labels\":{$labels}"
  body="{\"chart\":$(json_str "$chart"),\"value\":$number$labels}"
  post /api/v1/ingest application/json "$body" || warn "send $chart: $pp_err"
  return 0
}

# ping_path JOB KIND RID: the path of a ping.
ping_path() {
  p="/api/v1/ping/$(url_segment "$1")"
  [ -n "$2" ] && p="$p/$2"
  [ -n "$3" ] && p="$p?rid=$3"
  printf '%s' "$p"
}

cmd_ping() {
  if [ $# -lt 1 ] || [ $# -gt 2 ]; then usage; fi
  case ${2:-} in
    "" | start | fail) ;;
    *[!0-9]*) usage ;;
  esac
  workdir
  post "$(ping_path "$1" "${2:-}" "")" "text/plain; charset=utf-8" "" || warn "ping $1${2:+ $2}: $pp_err"
  return 0
}

cmd_run() {
  [ $# -ge 1 ] || usage
  job=$1
  shift
  [ "${1:-}" = "--" ] && shift
  [ $# -ge 1 ] || usage
  rid="$(date +%s)-$$"
  began=$(date +%s)
  if ! workdir; then
    warn "run $job: cannot make a temporary directory in ${TMPDIR:-/tmp}; running without pings"
    "$@"
    return
  fi
  out="$pp_dir/output" rcf="$pp_dir/status" startf="$pp_dir/start"
  # The start ping goes out beside the command, so the command never waits for the server.
  (
    post "$(ping_path "$job" start "$rid")" "text/plain; charset=utf-8" ""
    rc=$?
    printf '%s\n%s\n' "$rc" "$pp_err" >"$startf"
  ) &
  started=$!
  # Ctrl-C reaches the command (same process group); this shell stays to report how it ended.
  trap ':' INT
  # stdout and stderr pass through each to its own stream, and both are kept in $out.
  { { { "$@"; echo "$?" >"$rcf"; } 2>&1 1>&3 3>&- | tee -a "$out" 1>&2; } 3>&1 | tee -a "$out"; }
  trap - INT
  status=$(cat "$rcf" 2>/dev/null)
  [ -n "$status" ] || status=1
  took=$(($(date +%s) - began))
  wait "$started"
  start_rc=$(sed -n 1p "$startf")
  start_err=$(sed -n 2p "$startf")
  if [ "$start_rc" = 28 ]; then
    # The server did not answer within the timeout: the finish would wait as long again.
    warn "run $job: $start_err; the run is not recorded"
    return "$status"
  fi
  [ "$start_rc" = 0 ] || warn "run $job: start ping: $start_err"
  head="exit code $status after $took s"
  msgf="$pp_dir/message"
  { printf '%s\n' "$head"; tail -c $((10240 - ${#head} - 1)) "$out"; } >"$msgf"
  post "$(ping_path "$job" "$status" "$rid")" "text/plain; charset=utf-8" "@$msgf" ||
    warn "run $job: $pp_err"
  return "$status"
}

case ${1:-} in
  send) shift; cmd_send "$@" ;;
  ping) shift; cmd_ping "$@" ;;
  run) shift; cmd_run "$@" ;;
  *) usage ;;
esac
