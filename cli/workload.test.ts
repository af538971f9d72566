import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { V1Deployment, V1PodTemplateSpec, V1ReplicaSet } from '@kubernetes/client-node';
import {
  daemonSetTarget,
  deploymentTarget,
  newReplicaSet,
  parseWorkload,
  selectorString,
  statefulSetTarget,
} from './workload.js';

const template = (image: string): V1PodTemplateSpec => ({
  metadata: { labels: { app: 'web' } },
  spec: { containers: [{ name: 'web', image }] },
});

function deployment(image: string, gen = 2, observed = 2): V1Deployment {
  return {
    metadata: { name: 'web', uid: 'd-uid', generation: gen },
    spec: { replicas: 3, selector: { matchLabels: { app: 'web' } }, template: template(image) },
    status: { observedGeneration: observed },
  };
}

function replicaSet(image: string, hash: string, owner = 'd-uid'): V1ReplicaSet {
  return {
    metadata: {
      name: `web-${hash}`,
      labels: { app: 'web', 'pod-template-hash': hash },
      ownerReferences: [
        { apiVersion: 'apps/v1', kind: 'Deployment', name: 'web', uid: owner, controller: true },
      ],
    },
    spec: {
      selector: { matchLabels: { app: 'web', 'pod-template-hash': hash } },
      template: {
        metadata: { labels: { app: 'web', 'pod-template-hash': hash } },
        spec: { containers: [{ name: 'web', image }] },
      },
    },
  };
}

test('parseWorkload takes the spellings kubectl takes and refuses others', () => {
  assert.deepEqual(parseWorkload('deployment/web'), { kind: 'deployment', name: 'web' });
  assert.deepEqual(parseWorkload('deploy/web'), { kind: 'deployment', name: 'web' });
  assert.deepEqual(parseWorkload('deployments.apps/web-1'), { kind: 'deployment', name: 'web-1' });
  assert.deepEqual(parseWorkload('sts/db'), { kind: 'statefulset', name: 'db' });
  assert.deepEqual(parseWorkload('daemonset/agent'), { kind: 'daemonset', name: 'agent' });
  for (const bad of ['web', 'pod/web', 'deployment/', 'deployment/Web', 'replicaset/web', 'deployment/a/b']) {
    assert.throws(() => parseWorkload(bad), /expected deployment\/NAME/, bad);
  }
});

test('selectorString spells matchLabels and matchExpressions as the API takes them', () => {
  assert.equal(
    selectorString({
      matchLabels: { app: 'web', tier: 'fe' },
      matchExpressions: [
        { key: 'env', operator: 'In', values: ['a', 'b'] },
        { key: 'zone', operator: 'NotIn', values: ['x'] },
        { key: 'canary', operator: 'Exists' },
        { key: 'legacy', operator: 'DoesNotExist' },
      ],
    }),
    'app=web,tier=fe,env in (a,b),zone notin (x),canary,!legacy',
  );
  assert.equal(selectorString(undefined), '');
  assert.throws(() => selectorString({ matchExpressions: [{ key: 'k', operator: 'Gt' }] }), /operator "Gt"/);
});

test('newReplicaSet: the owned one whose template is the Deployment’s, hash label aside', () => {
  const d = deployment('app:2');
  const old = replicaSet('app:1', 'aaa');
  const cur = replicaSet('app:2', 'bbb');
  const foreign = replicaSet('app:2', 'ccc', 'other-uid');
  assert.equal(newReplicaSet(d, [old, cur, foreign]), cur);
  assert.equal(newReplicaSet(d, [old, foreign]), null, 'not made yet; another owner’s does not count');
});

test('deploymentTarget: the new pods, or what the rollout still waits for', () => {
  const rs = [replicaSet('app:1', 'aaa'), replicaSet('app:2', 'bbb')];
  assert.deepEqual(deploymentTarget(deployment('app:2'), rs), {
    state: 'ready',
    selector: 'app=web,pod-template-hash=bbb',
    expected: 3,
  });
  // Right after `kubectl set image`: the old pods must not be taken for the rollout's.
  assert.deepEqual(deploymentTarget(deployment('app:3', 3, 2), rs), {
    state: 'pending',
    why: 'waiting for the controller to see generation 3',
  });
  assert.deepEqual(deploymentTarget(deployment('app:3', 3, 3), rs), {
    state: 'pending',
    why: 'waiting for the new ReplicaSet',
  });
});

test('statefulSetTarget and daemonSetTarget', () => {
  assert.deepEqual(
    statefulSetTarget({
      metadata: { generation: 1 },
      spec: {
        replicas: 5,
        serviceName: 'db',
        selector: { matchLabels: { app: 'db' } },
        template: template('db:1'),
        updateStrategy: { rollingUpdate: { partition: 2 } },
      },
      status: { observedGeneration: 1, replicas: 5, updateRevision: 'db-7f' },
    }),
    { state: 'ready', selector: 'app=db,controller-revision-hash=db-7f', expected: 3 },
  );
  assert.deepEqual(
    daemonSetTarget({
      metadata: { generation: 4 },
      spec: { selector: { matchLabels: { app: 'agent' } }, template: template('agent:1') },
      status: {
        observedGeneration: 4,
        desiredNumberScheduled: 7,
        currentNumberScheduled: 7,
        numberMisscheduled: 0,
        numberReady: 0,
      },
    }),
    { state: 'ready', selector: 'app=agent', expected: 7 },
  );
});
