"""drorch's senses: probes of every site, the detector that turns them into verdicts, readiness."""
