"""The cluster rehearsal (`make rehearse`): every container the cluster would run, really run on this machine."""
