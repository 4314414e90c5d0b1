// SPDX-License-Identifier: MIT
/*
 * Linked with one layer whole and only the layers below it: if any object
 * of that layer calls up, this program fails to link.
 */
int main(void)
{
	return 0;
}
