"""The brand's twin: customer-base models fitted on its own order log, in days."""
