import type { Ticket } from '../ticket.js';

/** Shared across listeners: the process-wide connection limit, taken as tickets. */
export class ConnectionBudget {
  private count = 0;
  constructor(public max: number) {}

  get active(): number {
    return this.count;
  }

  /** A place for one connection, or undefined when the limit is reached. */
  take(): Ticket | undefined {
    if (this.count >= this.max) return undefined;
    this.count += 1;
    return new BudgetPlace(this);
  }

  /** A place given back (by its BudgetPlace, once). */
  giveBack(): void {
    this.count -= 1;
  }
}

/** One connection's place in the budget: an object per connection, no closure. */
class BudgetPlace implements Ticket {
  private budget: ConnectionBudget | undefined;

  constructor(budget: ConnectionBudget) {
    this.budget = budget;
  }

  get held(): boolean {
    return this.budget !== undefined;
  }

  release(): void {
    const budget = this.budget;
    this.budget = undefined;
    budget?.giveBack();
  }
}
