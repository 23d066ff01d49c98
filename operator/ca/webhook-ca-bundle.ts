/**
 * The JSON patch that sets `clientConfig.caBundle` on every webhook of a
 * Mutating- or ValidatingWebhookConfiguration whose bundle differs. A JSON
 * patch (not a merge patch) so the webhooks list is never replaced whole and
 * whatever else the chart or a user set on it is kept. Pure.
 */

interface WebhookConfigurationLike {
  webhooks?: readonly { clientConfig?: { caBundle?: string } }[];
}

/** `add` operations (they also replace) for every webhook whose caBundle is not `caBundle` (base64 PEM). */
export function webhookCaBundlePatch(
  configuration: WebhookConfigurationLike,
  caBundle: string,
): { op: 'add'; path: string; value: unknown }[] {
  const ops: { op: 'add'; path: string; value: unknown }[] = [];
  (configuration.webhooks ?? []).forEach((webhook, i) => {
    if (webhook.clientConfig === undefined)
      ops.push({ op: 'add', path: `/webhooks/${i}/clientConfig`, value: { caBundle } });
    else if (webhook.clientConfig.caBundle !== caBundle)
      ops.push({ op: 'add', path: `/webhooks/${i}/clientConfig/caBundle`, value: caBundle });
  });
  return ops;
}
