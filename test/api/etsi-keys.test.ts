import { describeEtsiKeyDelivery } from './etsi-keys-suite.js';

describeEtsiKeyDelivery({ title: 'over a direct link', targetKme: 'kme-b', slave: 'sae-b1', slave2: 'sae-b2' });
