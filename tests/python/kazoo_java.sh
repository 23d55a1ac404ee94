#!/usr/bin/env bash
# A stand-in `java` for kazoo's test harness (kazoo.testing), put first on its PATH by
# tests/kazoo_suite.rs: `java ... org.apache.zookeeper.server.quorum.QuorumPeerMain zoo.cfg` runs our
# zk-server ($ZK_RS_BIN) on the zoo.cfg the harness wrote, unless the server's myid is one of
# $ZK_APACHE_IDS (a mixed cluster: those run Apache's QuorumPeerMain with the harness's classpath);
# the system properties ZooKeeper reads become what ours reads (zoo.cfg keys; SERVER_JVMFLAGS, as
# zkServer.sh passes them). Anything else is java.
main=0
flags=()
cfg=
for a in "$@"; do
  case "$a" in
    org.apache.zookeeper.server.quorum.QuorumPeerMain) main=1 ;;
    -D*) flags+=("$a") ;;
  esac
  cfg="$a"
done
if [ "$main" = 1 ] && [ -n "${ZK_RS_BIN:-}" ]; then
  data_dir=$(sed -n 's/^dataDir=//p' "$cfg")
  id=$(cat "$data_dir/myid" 2>/dev/null)
  if [[ " ${ZK_APACHE_IDS:-} " != *" $id "* ]]; then
    for f in "${flags[@]}"; do
      case "$f" in
        -Dzookeeper.DigestAuthenticationProvider.superDigest=*)
          grep -q '^superDigest=' "$cfg" || echo "superDigest=${f#*=}" >>"$cfg" ;;
      esac
    done
    SERVER_JVMFLAGS="${flags[*]}" exec "$ZK_RS_BIN" "$cfg"
  fi
fi
exec /usr/bin/java "$@"
