#!/usr/bin/env node
// Node agent entry point. The pull tracker and publisher land in their own issues.
process.stderr.write('pulltrace-node-agent: not yet implemented\n');
process.exit(2);
