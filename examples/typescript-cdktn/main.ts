import { App, Aspects } from 'cdktn';
import { platformPolicy } from './policy.js';
import { AiConfigStack } from './stack.js';

const app = new App();
new AiConfigStack(app, 'rigbox-ai-config');
// Added to the App, the policy covers every stack in it.
Aspects.of(app).add(platformPolicy());
app.synth();
