/* The program of a layer check (CMakeLists.txt): it does nothing; linking one module's whole
 * archive against only its declared dependencies is the check. */
int main(void)
{
	return 0;
}
