#!/usr/bin/env bash
# check_layers.sh — fails when an include points up the layers.
#
# The folders are the layers, bottom to top (docs/ARCHITECTURE.md):
#   0 core/       ground floor
#   1 (proto)     generated messages and descriptors: *.pb-c.h, *.mq.h
#   2 lib/        domain-neutral libraries
#   3 store/      repositories
#   4 handlers/   domain modules (+ generated *.mq-server.h)
#   4 consumers/  consumer runtime and consumers   (beside handlers)
#   4 clients/    C client library and CLI (+ generated *.mq-client.h)
#   5 server/     the transport
# A file may include its own layer or a lower one; the three rank-4 folders
# may not include each other. Only server/ and clients/ may include the gRPC
# runtime (<grpc/grpc.h>, <grpc/byte_buffer*.h>), and only lib/mq_http.c
# (the side HTTP port, which the server and every consumer process serve)
# the HTTP server (<microhttpd.h>): no other file touches a wire type.
# Includes of our own headers name the layer ("core/mq_error.h"); a bare
# "x.h" is refused too, since its layer cannot be told.
#
# Usage: check_layers.sh [ROOT]   (ROOT defaults to the repository)
# Exit 0 and one summary line when clean; 1 and one line per violation
# ("file:line: what") otherwise.
set -euo pipefail
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$root"

rank_of_dir() {
  case $1 in
    core) echo 0 ;; lib) echo 2 ;; store) echo 3 ;;
    handlers | consumers | clients) echo 4 ;; server) echo 5 ;;
    *) echo -1 ;;
  esac
}

bad=0
files=0
while IFS= read -r f; do
  files=$((files + 1))
  layer=${f%%/*}
  rank=$(rank_of_dir "$layer")
  while IFS= read -r hit; do
    line=${hit%%:*}
    inc=${hit#*:}
    what=""
    case $inc in
      \<grpc/grpc.h\> | \<grpc/byte_buffer*)
        [[ $layer == server || $layer == clients ]] || what="the gRPC runtime ($inc) belongs to server/ and clients/" ;;
      \<microhttpd.h\>)
        [[ $f == lib/mq_http.c ]] || what="the HTTP server ($inc) belongs to lib/mq_http.c" ;;
      \<*) ;;
      \"*)
        path=${inc#\"}
        path=${path%\"}
        top=${path%%/*}
        if [[ $path != */* ]]; then
          # a header beside the file in tests' style is not ours to judge here
          what="\"$path\" names no layer: include it as \"<layer>/…/$path\""
        elif [[ $path == *.mq-server.h ]]; then
          [[ $layer == handlers || $layer == server ]] || what="$path is the handlers' generated binding (rank 4)"
        elif [[ $path == *.mq-client.h ]]; then
          [[ $layer == clients ]] || what="$path is the clients' generated stub"
        elif [[ $path == *.pb-c.h || $path == *.mq.h ]]; then
          [[ $rank -ge 1 || $path == google/protobuf/* ]] || what="$path is generated code (rank 1), above core/"
        else
          target=$(rank_of_dir "$top")
          if [[ $target -lt 0 ]]; then
            : # not one of ours (a third-party header with a slash)
          elif [[ $target -gt $rank ]]; then
            what="$layer/ (rank $rank) includes $path from $top/ (rank $target): includes point down only"
          elif [[ $target -eq 4 && $rank -eq 4 && $top != "$layer" ]]; then
            what="$layer/ includes $path: handlers/, consumers/ and clients/ stand beside each other"
          fi
        fi
        ;;
    esac
    if [[ -n $what ]]; then
      echo "$f:$line: $what"
      bad=$((bad + 1))
    fi
  done < <(grep -n -E '^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"]' "$f" |
    sed -E 's/^([0-9]+):[[:space:]]*#[[:space:]]*include[[:space:]]*([<"][^>"]*[>"]).*/\1:\2/')
done < <(find core lib store handlers consumers clients server -type f \( -name '*.c' -o -name '*.h' \) 2>/dev/null | sort)

if [[ $bad -gt 0 ]]; then
  echo "check_layers: $bad upward or unnamed include(s) in $files files (see docs/ARCHITECTURE.md, Layers)" >&2
  exit 1
fi
echo "check_layers: $files files, every include points down"
