  # receiver.yaml names people and their addresses: readable by root and bpmc only.
  if ! dpkg-statoverride --list /etc/bpmc/receiver.yaml >/dev/null; then
    dpkg-statoverride --update --add root bpmc 0640 /etc/bpmc/receiver.yaml
  fi
