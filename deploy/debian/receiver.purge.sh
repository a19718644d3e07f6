  if dpkg-statoverride --list /etc/bpmc/receiver.yaml >/dev/null; then
    dpkg-statoverride --remove /etc/bpmc/receiver.yaml
  fi
