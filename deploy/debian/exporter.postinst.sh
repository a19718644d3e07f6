  # The spool (data_dir). bpmc-exporter.service's StateDirectory= would make it too.
  install -d -o bpmc -g bpmc -m 0750 /var/lib/bpmc/exporter
