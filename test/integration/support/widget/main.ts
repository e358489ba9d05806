/**
 * An operator of Widgets only: the program the lease tests run as replicas
 * (OS processes), with the same process wiring as src/main.ts.
 */
import { runOperator } from '../../../../src/runtime/run.ts';
import { registerWidgetController } from './widget.ts';

await runOperator((manager) => {
  registerWidgetController(manager);
});
