#!/usr/bin/env node
// pulltrace-node-agent: follows the image pulls on this node (DaemonSet), or with `pulls`
// prints them once or live (a debugging command for a node).
// Exit codes: the agent 0 after SIGTERM/SIGINT, 1 fatal error, 2 bad option (PT_CONFIG_INVALID);
// `pulls` 0 done, 1 containerd could not be read, 2 bad option.
import { Command } from 'commander';
import { readCommand } from '../common/options.js';
import { runMain, untilStopped, type Run } from '../common/run-main.js';
import { AGENT_NAME, runAgent } from './agent.js';
import {
  AGENT_FIELDS,
  PULLS_FIELDS,
  addAgentOptions,
  addPullsOptions,
  type AgentConfig,
  type PullsConfig,
} from './config.js';
import { GrpcContainerdSource } from './containerd/grpc-client.js';
import { runPulls } from './pulls.js';

/** `pulls`: prints the node's pulls once, or until `stop` with --watch. */
function pulls(config: PullsConfig): Run {
  return async (stop) => {
    const source = new GrpcContainerdSource(config.containerd);
    try {
      await runPulls(config, source, {
        out: (t) => process.stdout.write(t),
        isTTY: process.stdout.isTTY,
        interrupted: untilStopped(stop),
      });
      return 0;
    } catch (err) {
      throw new Error(`cannot read containerd at ${config.containerd.address}`, { cause: err });
    } finally {
      source.close();
    }
  };
}

function program(select: (run: Run) => void): Command {
  const root = addAgentOptions(
    new Command(AGENT_NAME).description(
      'Follows image pulls on this node and reports them on the waiting pods.',
    ),
  )
    // Flags after `pulls` are the subcommand's own, though the agent has some of the same names.
    .enablePositionalOptions()
    .action((_options: unknown, cmd: Command) => {
      const config = readCommand<AgentConfig>(cmd, AGENT_FIELDS);
      select((stop) => runAgent(config, stop));
    });
  root.addCommand(
    addPullsOptions(
      new Command('pulls').description("Prints this node's image pulls as containerd shows them."),
    ).action((_options: unknown, cmd: Command) => {
      select(pulls(readCommand<PullsConfig>(cmd, PULLS_FIELDS)));
    }),
  );
  return root;
}

runMain({ prefix: AGENT_NAME, failureExitCode: 1, program });
